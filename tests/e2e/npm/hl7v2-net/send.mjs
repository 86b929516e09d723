// send.mjs: sends HL7 files to an MLLP server with hl7v2-net's client, one
// message at a time, and prints one JSON line per ACK:
//   {"file","code","control_id","sent_control_id","error","ms"}
// This client acknowledges every message it receives, ACKs included, so a
// server that answered ACKs would start an endless exchange. After the last
// ACK it listens --quiet-ms more (default 500) and prints a summary:
//   {"summary":true,"sent","frames_received","frames_written","local_port"}
// frames_received counts every frame the server sent (it must equal sent),
// frames_written every frame this client wrote (its messages and its ACKs
// of the server's ACKs). Exits 1 when an ACK did not come within --timeout.
//
//   node send.mjs HOST PORT [--timeout MS] [--quiet-ms MS] FILE...
import { HL7Message } from 'hl7v2';
import { Hl7Client } from 'hl7v2-net';
import { controlId, out, parseArgs, readMessages } from '../common.mjs';

const args = parseArgs(process.argv.slice(2));
const quietMs = args.quietMs || 500;
const total = args.timeout * 4 + quietMs + 5000;
setTimeout(() => {
  out({ failure: `no completion within ${total} ms` });
  process.exit(3);
}, total).unref();

const client = Hl7Client.createClient({
  host: args.host,
  port: args.port,
  connectTimeout: args.timeout,
  responseTimeout: args.timeout,
});
let framesReceived = 0;
let framesWritten = 0;
client.on('data', () => framesReceived++);
client.on('send', () => framesWritten++);
client.on('error', (e) => out({ client_error: String(e?.message ?? e) }));

let status = 0;
let sent = 0;
await client.connect();
const localPort = client.localPort;
for (const file of args.files) {
  for (const text of readMessages(file)) {
    const sentId = controlId(text);
    const t0 = process.hrtime.bigint();
    try {
      const msg = HL7Message.parse(text);
      sent++;
      const ack = await client.sendMessageWaitAck(msg);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const msa = ack.getSegment('MSA');
      const err = ack.getSegment('ERR');
      out({
        file,
        code: msa?.field(1).getValue() ?? null,
        control_id: msa?.field(2).getValue() ?? null,
        sent_control_id: sentId,
        error: err ? err.field(8).toHL7String() : null,
        ms,
      });
    } catch (e) {
      out({ file, sent_control_id: sentId, failure: String(e?.message ?? e) });
      status = 1;
    }
  }
}
// Anything the server sends from now on would be an answer to an ACK.
await new Promise((r) => setTimeout(r, quietMs));
out({ summary: true, sent, frames_received: framesReceived, frames_written: framesWritten, local_port: localPort });
await client.close();
process.exit(status);
