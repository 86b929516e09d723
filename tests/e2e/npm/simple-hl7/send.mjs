// send.mjs: sends HL7 files to an MLLP server with simple-hl7's TCP client,
// one message at a time (the next is scheduled with setImmediate once the
// ACK is in), and prints one JSON line per ACK:
//   {"file","code","control_id","sent_control_id","ms"}
// Exits 1 when an ACK did not come within --timeout ms.
//
//   node send.mjs HOST PORT [--timeout MS] FILE...
import hl7 from 'simple-hl7';
import { controlId, out, parseArgs, readMessages } from '../common.mjs';

const args = parseArgs(process.argv.slice(2));
const queue = [];
for (const file of args.files) for (const text of readMessages(file)) queue.push({ file, text });

const client = hl7.Server.createTcpClient({ host: args.host, port: args.port, keepalive: true });
let timer = null;
let t0 = 0n;

function finish(status) {
  client.close();
  process.exit(status);
}

function next() {
  const item = queue.shift();
  if (!item) return finish(0);
  const sent = controlId(item.text);
  timer = setTimeout(() => {
    out({ file: item.file, sent_control_id: sent, failure: `no ACK within ${args.timeout} ms` });
    finish(1);
  }, args.timeout);
  t0 = process.hrtime.bigint();
  // The message goes as the text it is: simple-hl7 writes msg.toString().
  client.send(item.text, (err, ack) => {
    clearTimeout(timer);
    if (err) {
      out({ file: item.file, sent_control_id: sent, failure: String(err?.message ?? err) });
      return finish(1);
    }
    const msa = ack.getSegment('MSA');
    out({
      file: item.file,
      code: msa ? msa.getField(1) : null,
      control_id: msa ? msa.getField(2) : null,
      sent_control_id: sent,
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
    });
    setImmediate(next);
  });
}

client.connect((err) => {
  if (err) {
    out({ failure: `cannot connect: ${err.message ?? err}` });
    process.exit(1);
  }
  next();
});
