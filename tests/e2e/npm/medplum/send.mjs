// send.mjs: sends HL7 files to an MLLP server with @medplum/hl7's client
// (keepAlive: one connection for everything), one message at a time, and
// prints one JSON line per ACK:
//   {"file","code","control_id","sent_control_id","error","ms"}
// code is MSA-1, control_id MSA-2, sent_control_id the MSH-10 sent, error
// ERR-8 (if any), ms the round trip. A message without an ACK within
// --timeout ms prints {"file","sent_control_id","failure"} and the script
// exits 1; it exits 0 once every message has its ACK, whatever its code.
//
//   node send.mjs HOST PORT [--timeout MS] FILE...
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { controlId, out, parseArgs, readMessages } from '../common.mjs';

const args = parseArgs(process.argv.slice(2));
// A hard deadline for the whole run, so a hang is a failure, not a stall.
const total = args.timeout * 4 + 5000;
setTimeout(() => {
  out({ failure: `no completion within ${total} ms` });
  process.exit(3);
}, total).unref();

const client = new Hl7Client({ host: args.host, port: args.port, keepAlive: true, connectTimeout: args.timeout });
let status = 0;
try {
  for (const file of args.files) {
    for (const text of readMessages(file)) {
      const sent = controlId(text);
      const t0 = process.hrtime.bigint();
      try {
        const ack = await client.sendAndWait(Hl7Message.parse(text), { timeoutMs: args.timeout });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const msa = ack.getSegment('MSA');
        const err = ack.getSegment('ERR');
        out({
          file,
          code: msa?.getField(1)?.toString() ?? null,
          control_id: msa?.getField(2)?.toString() ?? null,
          sent_control_id: sent,
          ack_type: ack.getSegment('MSH')?.getField(9)?.toString() ?? null,
          error: err?.getField(8)?.toString() ?? null,
          ms,
        });
      } catch (e) {
        out({ file, sent_control_id: sent, failure: String(e?.message ?? e) });
        status = 1;
      }
    }
  }
} finally {
  await client.close();
}
process.exit(status);
