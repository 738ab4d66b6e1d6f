// A stateful MCP server on the real TypeScript SDK (@modelcontextprotocol/sdk 1.x), one
// StreamableHTTPServerTransport per session, as the SDK's own examples build it. Two patterns for
// a request whose session id this process does not hold:
//   --pattern sdk      404, JSON-RPC -32001 "Session not found" (the SDK transport's answer and
//                      today's examples)
//   --pattern example  400, JSON-RPC -32000 "Bad Request: No valid session ID provided" (the
//                      older example pattern many servers copied)
// Tools: set_session_value, get_session_state, whoami; each names its task in structuredContent.
// Prints one JSON line {"event":"listening","port":N} on stdout; never prints a session id.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const pattern = option('--pattern', 'sdk');
const taskId = option('--task-id', 'ts-task');

const sessions = new Map(); // session id -> { transport, values }

function buildServer(values) {
  const server = new Server({ name: 'ts-peer', version: '1.0.0' }, { capabilities: { tools: {} } });
  const tool = (name) => ({ name, inputSchema: { type: 'object' } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [tool('set_session_value'), tool('get_session_state'), tool('whoami')],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name, arguments: input = {} } = request.params;
    let result;
    if (name === 'set_session_value') {
      values[input.key] = input.value;
      result = { task_id: taskId, key: input.key };
    } else if (name === 'get_session_state') {
      result = { task_id: taskId, values: { ...values } };
    } else if (name === 'whoami') {
      result = { task_id: taskId };
    } else {
      return { isError: true, content: [{ type: 'text', text: `unknown tool ${name}` }] };
    }
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
  });
  return server;
}

function rejectUnknown(res) {
  if (pattern === 'example') {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Bad Request: No valid session ID provided' },
      id: null,
    }));
  } else {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
  }
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

const http = createServer(async (req, res) => {
  try {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (!req.url.startsWith('/mcp')) {
      res.writeHead(404);
      res.end('Not Found');
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const known = sessionId ? sessions.get(sessionId) : undefined;
    if (known) {
      await known.transport.handleRequest(req, res, body);
      return;
    }
    if (!sessionId && req.method === 'POST' && isInitializeRequest(body)) {
      const values = {};
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => sessions.set(id, { transport, values }),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await buildServer(values).connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    if (sessionId) {
      rejectUnknown(res);
      return;
    }
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Bad Request: No valid session ID provided' },
      id: null,
    }));
  } catch (error) {
    // Never echo the request (it carries the session id): the error's kind is enough here.
    process.stderr.write(`ts-peer: request failed: ${error?.name ?? 'Error'}\n`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
    }
  }
});

http.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: http.address().port }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => http.close(() => process.exit(0)));
}
