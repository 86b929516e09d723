// common.mjs: what the three MLLP client scripts share (no dependencies).
//
// readMessages(file) splits an HL7 file the way a sender would: one message
// per MSH, segments joined with CR, blank lines, FHS/BHS/BTS/FTS envelope
// lines and MLLP bytes left in dump files dropped.
import { readFileSync } from 'node:fs';

export function readMessages(file) {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const msgs = [];
  let cur = null;
  for (let line of text.split(/\r\n|\r|\n/)) {
    line = line.replace(/[\x0b\x1c]/g, '');
    if (line.trim() === '' || /^(FHS|BHS|BTS|FTS)/.test(line)) continue;
    if (line.startsWith('MSH')) {
      cur = [];
      msgs.push(cur);
    }
    if (cur) cur.push(line);
  }
  return msgs.map((segs) => segs.join('\r'));
}

// MSH-10 of a message in HL7 text (standard or not-so-standard delimiters).
export function controlId(msg) {
  const msh = msg.split('\r')[0];
  const fs = msh.charAt(3);
  return msh.split(fs)[9] ?? '';
}

// Parses "HOST PORT [--timeout MS] [--quiet-ms MS] FILE..." argument lists.
export function parseArgs(argv) {
  const args = { host: argv[0], port: Number(argv[1]), timeout: 10000, quietMs: 0, files: [] };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--timeout') args.timeout = Number(argv[++i]);
    else if (argv[i] === '--quiet-ms') args.quietMs = Number(argv[++i]);
    else args.files.push(argv[i]);
  }
  if (!args.host || !args.port || args.files.length === 0) {
    process.stderr.write('usage: node send.mjs HOST PORT [--timeout MS] [--quiet-ms MS] FILE...\n');
    process.exit(2);
  }
  return args;
}

export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
