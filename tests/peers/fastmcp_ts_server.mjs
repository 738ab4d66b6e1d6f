// A stateful MCP server on TypeScript fastmcp 4.20 (npm `fastmcp`, on mcp-proxy and the TypeScript
// SDK): httpStream transport, sessions kept in this process (fastmcp's default). Tools
// set_session_value, get_session_state and whoami, as the probe calls them. The port comes from
// --port (fastmcp prints the configured port, so the caller picks a free one); /health is
// fastmcp's own. Prints {"event":"listening","port":N} once started; never prints a session id.
import { FastMCP } from 'fastmcp';
import { z } from 'zod';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const port = Number(option('--port', '0'));
const taskId = option('--task-id', 'fastmcp-task');
const quiet = { debug() {}, error() {}, info() {}, log() {}, warn() {} };

const server = new FastMCP({ name: 'fastmcp-peer', version: '1.0.0', logger: quiet });
const values = new Map(); // session id -> { key: value }
const reply = (result) => JSON.stringify({ task_id: taskId, ...result });

server.addTool({
  name: 'set_session_value',
  parameters: z.object({ key: z.string(), value: z.string() }),
  execute: async ({ key, value }, { sessionId }) => {
    const mine = values.get(sessionId) ?? {};
    mine[key] = value;
    values.set(sessionId, mine);
    return reply({ key });
  },
});
server.addTool({
  name: 'get_session_state',
  parameters: z.object({}),
  execute: async (_input, { sessionId }) => reply({ values: values.get(sessionId) ?? {} }),
});
server.addTool({ name: 'whoami', parameters: z.object({}), execute: async () => reply({}) });

await server.start({
  transportType: 'httpStream',
  httpStream: { port, host: '127.0.0.1', endpoint: '/mcp' },
});
console.log(JSON.stringify({ event: 'listening', port }));
process.on('SIGTERM', async () => {
  await server.stop();
  process.exit(0);
});
