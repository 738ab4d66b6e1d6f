// A real TypeScript SDK client (@modelcontextprotocol/sdk 1.x, StreamableHTTPClientTransport over
// Node's fetch, which keeps no cookies): write then read in one session, `--cycles` times.
// Like an application written on the SDK, it starts a new session when a call fails with the
// session gone (the SDK client does not re-initialize by itself). One JSON line per call on
// stdout, with the session's fingerprint (first 16 hex of sha256), never the raw session id.
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, ...rest] = process.argv.slice(2);
const cyclesAt = rest.indexOf('--cycles');
const cycles = cyclesAt >= 0 ? Number(rest[cyclesAt + 1]) : 5;
const fingerprint = (id) => (id ? createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 16) : null);
const emit = (doc) => process.stdout.write(JSON.stringify(doc) + '\n');

async function open() {
  // A handshake can lose its session too (the notification lands on another task): start over,
  // as an application would, a bounded number of times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const client = new Client({ name: 'sessionwatch-ts-peer-client', version: '1.0.0' });
    client.onerror = () => {}; // the standalone GET stream may land on another task: not a call
    try {
      await client.connect(transport);
      emit({ tool: 'initialize', ok: true, session: fingerprint(transport.sessionId) });
      return { client, transport };
    } catch (error) {
      const status = error instanceof StreamableHTTPError ? error.code : null;
      emit({ tool: 'initialize', ok: false, session: fingerprint(transport.sessionId), status });
      if (status === 404 || status === 400) lost += 1;
      await transport.close().catch(() => {});
    }
  }
  return null; // no session this time: the next cycle tries again
}

let lost = 0;
let current = await open();
for (let i = 0; i < cycles; i++) {
  if (current === null) {
    current = await open();
    if (current === null) continue;
  }
  for (const [tool, args] of [['set_session_value', { key: `k${i}`, value: `v${i}` }], ['get_session_state', {}]]) {
    const session = fingerprint(current.transport.sessionId);
    try {
      const result = await current.client.callTool({ name: tool, arguments: args });
      emit({ tool, ok: !result.isError, session, task_id: result.structuredContent?.task_id ?? null });
    } catch (error) {
      const status = error instanceof StreamableHTTPError ? error.code : null;
      emit({ tool, ok: false, session, status, error: error?.name ?? 'Error' });
      if (status === 404 || status === 400) {
        lost += 1;
        await current.transport.close().catch(() => {});
        current = await open();
        break; // the cycle's read would only ask the dead session again
      }
    }
  }
}
emit({ summary: true, lost });
await current?.transport.close().catch(() => {});
process.exit(0);
