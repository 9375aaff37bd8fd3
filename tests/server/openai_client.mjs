// openai_client.mjs — q35 serve through the official `openai` npm package
// (tests/server/package.json): models, plain and streamed chat completions,
// a raw completion, tool-call round trips (tools offered; a call forced
// with tool_choice "required", parsed into tool_calls; the assistant turn
// and its tool result sent back; the answer), response_format json_schema,
// and errors surfacing as the client's typed errors.
// Usage: node openai_client.mjs BASE_URL (e.g. http://127.0.0.1:PORT/v1).
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const model = 'tiny-chat';
const user = { role: 'user', content: 'Hello there' };

const tests = {
  async models() {
    const list = await client.models.list();
    assert.equal(list.data[0].id, model);
  },
  async plain() {
    const r = await client.chat.completions.create({ model, messages: [user], max_tokens: 16, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
    return r;
  },
  async streamed() {
    const whole = await client.chat.completions.create({ model, messages: [user], max_tokens: 16, temperature: 0 });
    const s = await client.chat.completions.create({
      model, messages: [user], max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let content = '', reasoning = '', usage = null, finish = null;
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      content += c.delta.content ?? '';
      reasoning += c.delta.reasoning_content ?? '';
      finish = c.finish_reason ?? finish;
    }
    assert.equal(content, whole.choices[0].message.content);
    assert.equal(reasoning, whole.choices[0].message.reasoning_content ?? '');
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  },
  async completion() {
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8 });
    assert.equal(typeof r.choices[0].text, 'string');
  },
  async toolRoundTrip() {
    const tools = [{
      type: 'function',
      function: {
        name: 'get_weather', description: 'Weather of a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    }];
    const first = await client.chat.completions.create({ model, messages: [user], tools, max_tokens: 24 });
    const m = first.choices[0].message;
    assert.ok(!(m.content ?? '').includes('<tool_call>'));
    // the tool call (the model's own if it made one, else one as a client would replay it)
    const call = m.tool_calls?.[0] ?? {
      id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
    };
    JSON.parse(call.function.arguments);
    const answer = await client.chat.completions.create({
      model, tools, max_tokens: 16,
      messages: [user, { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' }],
    });
    assert.ok(['stop', 'length', 'tool_calls'].includes(answer.choices[0].finish_reason));
    assert.ok(!(answer.choices[0].message.content ?? '').includes('<tool_call>'));
  },
  async responseFormat() {
    const schema = {
      type: 'object', properties: { answer: { enum: ['yes', 'no'] } },
      required: ['answer'], additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      model, messages: [user], max_tokens: 60, chat_template_kwargs: { enable_thinking: false },
      response_format: { type: 'json_schema', json_schema: { name: 'yn', schema } },
    });
    const c = r.choices[0];
    if (c.finish_reason === 'stop') assert.ok(['yes', 'no'].includes(JSON.parse(c.message.content).answer));
    else assert.ok(c.message.content.trimStart().startsWith('{'));
  },
  async forcedToolCall() {
    const tools = [{
      type: 'function',
      function: {
        name: 'set_unit', parameters: {
          type: 'object', properties: { unit: { enum: ['celsius', 'fahrenheit'] } },
          required: ['unit'], additionalProperties: false,
        },
      },
    }];
    let r;
    try {
      r = await client.chat.completions.create({
        model, messages: [user], tools, tool_choice: 'required', parallel_tool_calls: false,
        max_tokens: 120, chat_template_kwargs: { enable_thinking: false },
      });
    } catch (e) { // no tool-call grammar in the constraint layer yet: a clear 400
      assert.ok(e instanceof OpenAI.BadRequestError && e.param === 'tool_choice', String(e));
      assert.ok(e.message.includes('not yet supported'), e.message);
      return;
    }
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 1);
    const call = m.tool_calls[0];
    assert.ok(['celsius', 'fahrenheit'].includes(JSON.parse(call.function.arguments).unit));
    // the round trip: the call and its result go back, an answer comes
    const answer = await client.chat.completions.create({
      model, tools, max_tokens: 16,
      messages: [user, m, { role: 'tool', tool_call_id: call.id, content: 'done' }],
    });
    assert.ok(['stop', 'length', 'tool_calls'].includes(answer.choices[0].finish_reason));
  },
  async errors() {
    await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages: [user] }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model, messages: [user], n: 2 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
    await assert.rejects(client.chat.completions.create({ model, messages: [user], logprobs: true }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'logprobs');
  },
};

let failed = 0;
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
