// The Node openai SDK against a kt_trio gateway, as an application would use it.
// Usage: node sdk.mjs <scenario> <json args>; prints one JSON line with what the SDK saw.
// Scenarios: chat-stream, realtime, azure-chat, azure-realtime. The test (tests/test_node_sdk.py)
// starts the gateway and the mock provider and checks the provider's side.
import OpenAI, { AzureOpenAI } from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const [scenario, raw] = process.argv.slice(2);
const args = JSON.parse(raw);
const clientOptions = { apiKey: args.key, maxRetries: 0, timeout: 20000 };

async function chatStream(client, model) {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: args.text }],
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return { text };
}

function realtimeRoundTrip(rt) {
  // Sends one user item and resolves with the event types seen until the provider echoes it.
  return new Promise((resolve, reject) => {
    const seen = [];
    const timer = setTimeout(() => reject(new Error(`no item echo; saw ${seen}`)), 20000);
    rt.on('error', (err) => { clearTimeout(timer); reject(err); });
    rt.on('event', (event) => {
      seen.push(event.type);
      if (event.type === 'session.created') {
        rt.send({
          type: 'conversation.item.create',
          item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: args.text }] },
        });
      }
      if (event.type === 'conversation.item.added') {
        clearTimeout(timer);
        rt.close();
        resolve({ seen });
      }
    });
  });
}

let result;
if (scenario === 'chat-stream') {
  result = await chatStream(new OpenAI({ ...clientOptions, baseURL: args.baseURL }), args.model);
} else if (scenario === 'azure-chat') {
  const client = new AzureOpenAI({ ...clientOptions, endpoint: args.endpoint, apiVersion: args.apiVersion });
  result = await chatStream(client, args.deployment);
} else if (scenario === 'realtime') {
  const client = new OpenAI({ ...clientOptions, baseURL: args.baseURL });
  result = await realtimeRoundTrip(new OpenAIRealtimeWS({ model: args.model }, client));
} else if (scenario === 'azure-realtime') {
  const client = new AzureOpenAI({ ...clientOptions, endpoint: args.endpoint, apiVersion: args.apiVersion });
  result = await realtimeRoundTrip(await OpenAIRealtimeWS.azure(client, { deploymentName: args.deployment }));
} else {
  throw new Error(`unknown scenario ${scenario}`);
}
console.log(JSON.stringify(result));
