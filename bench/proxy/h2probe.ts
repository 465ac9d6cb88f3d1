/**
 * Does a listener speak HTTP/2 over cleartext with prior knowledge (what h2load
 * does on an http:// URL)? Sends the connection preface and an empty SETTINGS
 * frame and looks at the first bytes of the answer.
 */
import { connect } from 'node:net';
import { HOST } from './common.js';

export function probeH2c(port: number): Promise<{ ok: boolean; answer: string }> {
  return new Promise((resolve) => {
    const s = connect(port, HOST);
    let buf = Buffer.alloc(0);
    const done = (): void => {
      s.destroy();
      // An HTTP/2 server's first frame is SETTINGS: 9-byte header, type 0x4 at offset 3.
      const ok = buf.length >= 9 && buf[3] === 0x4;
      const answer = ok ? 'SETTINGS frame' : buf.length === 0 ? 'no answer / closed' : JSON.stringify(buf.subarray(0, 40).toString('latin1').split('\r\n')[0]);
      resolve({ ok, answer });
    };
    s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); if (buf.length >= 9) done(); });
    s.on('close', done);
    s.on('error', done);
    s.setTimeout(2000, done);
    s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
  });
}
