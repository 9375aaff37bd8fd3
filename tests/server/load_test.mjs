// load_test.mjs — a bounded load test of q35 serve over loopback (node's
// own http module, no dependencies): N chat completion requests, C at a
// time, streamed or not; prints one JSON line with the counts and the
// latency distribution (ms, whole request; for streams also the time to
// the first content chunk). Exits 1 if any request failed.
// Usage: node load_test.mjs URL N C MAX_TOKENS [stream]
import http from 'node:http';

const [url, nArg, cArg, mtArg, mode] = process.argv.slice(2);
const N = Math.min(Number(nArg ?? 20), 10000), C = Math.min(Number(cArg ?? 4), 256);
const maxTokens = Number(mtArg ?? 16), stream = mode === 'stream';
const u = new URL(url);
if (u.hostname !== '127.0.0.1') throw new Error('loopback only');

function one(i) {
  const body = JSON.stringify({
    messages: [{ role: 'user', content: `request ${i}` }], max_tokens: maxTokens, stream, seed: i,
    chat_template_kwargs: { enable_thinking: false },
  });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: '/v1/chat/completions', method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let data = '', first = null;
      res.on('data', (d) => {
        if (first === null && stream && d.toString().includes('"content"')) first = performance.now() - t0;
        data += d;
      });
      res.on('end', () => {
        const ok = res.statusCode === 200 && (stream ? data.trimEnd().endsWith('data: [DONE]') : JSON.parse(data).choices?.length === 1);
        resolve({ ok, ms: performance.now() - t0, first, status: res.statusCode });
      });
    });
    req.on('error', () => resolve({ ok: false, ms: performance.now() - t0, status: 0 }));
    req.setTimeout(120000, () => req.destroy());
    req.end(body);
  });
}

const results = [];
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async () => {
  while (next < N) results.push(await one(next++));
}));
const wall = (performance.now() - t0) / 1000;
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))].toFixed(1) : null;
};
const ms = results.map((r) => r.ms), firsts = results.filter((r) => r.first !== null).map((r) => r.first);
const failed = results.filter((r) => !r.ok);
console.log(JSON.stringify({
  requests: results.length, failed: failed.length, statuses: [...new Set(failed.map((r) => r.status))],
  concurrency: C, max_tokens: maxTokens, stream, wall_s: +wall.toFixed(2), req_per_s: +(N / wall).toFixed(2),
  p50_ms: pct(ms, 50), p90_ms: pct(ms, 90), p99_ms: pct(ms, 99),
  first_chunk_p50_ms: pct(firsts, 50), first_chunk_p99_ms: pct(firsts, 99),
}));
process.exit(failed.length ? 1 : 0);
