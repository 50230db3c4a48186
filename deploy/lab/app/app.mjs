// The lab's application: an unmodified program that calls the Anthropic
// Messages API with the official TypeScript SDK. It knows nothing of veil:
// base URL, certificate checks and API key are the SDK's defaults. It trusts
// the lab CA only because the lab starts it with NODE_EXTRA_CA_CERTS.
//
// usage: node app.mjs plain|stream|tool   (prints one JSON line: what it
// sent and what it got back, for the lab's side-by-side)
import Anthropic from "@anthropic-ai/sdk";
import { readFileSync } from "node:fs";

const incident = JSON.parse(readFileSync(new URL("./incident.json", import.meta.url)));
const client = new Anthropic({ maxRetries: 0, timeout: 30_000 });
const model = "claude-sonnet-4-5";

const tools = [{
  name: "describe_instance",
  description: "Runs `aws ec2 describe-instances` for one instance id and returns its JSON output.",
  input_schema: { type: "object", properties: { instance_id: { type: "string" } }, required: ["instance_id"] },
}];

function question() {
  return [{ role: "user", content: incident.question }];
}

async function plain() {
  const request = { model, max_tokens: 512, messages: question() };
  const message = await client.messages.create(request);
  return { request, response: message, text: message.content.filter((b) => b.type === "text").map((b) => b.text).join("") };
}

async function stream() {
  const request = { model, max_tokens: 512, messages: question() };
  let events = 0;
  let text = "";
  const s = client.messages.stream(request);
  s.on("streamEvent", () => { events += 1; });
  s.on("text", (delta) => { text += delta; });
  const message = await s.finalMessage();
  return { request: { ...request, stream: true }, response: message, text, events };
}

// A tool round trip: the model asks for describe_instance; the application
// runs it with the input it received (the real instance id, restored by
// veil) and sends the CLI output back as a tool_result.
async function tool() {
  const first = { model, max_tokens: 512, tools, messages: question() };
  const reply = await client.messages.create(first);
  const use = reply.content.find((b) => b.type === "tool_use");
  if (!use) throw new Error("the model did not call the tool");
  const output = JSON.stringify(incident.tool_output, null, 2);
  const second = {
    model, max_tokens: 512, tools,
    messages: [
      ...question(),
      { role: "assistant", content: reply.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: output }] },
    ],
  };
  const final = await client.messages.create(second);
  return {
    request: second, response: final, tool_input: use.input, first_request: first, first_response: reply,
    text: final.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
  };
}

const scenarios = { plain, stream, tool };
const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`usage: node app.mjs ${Object.keys(scenarios).join("|")}`);
  process.exit(2);
}
try {
  const result = await scenarios[name]();
  process.stdout.write(JSON.stringify({ scenario: name, ok: true, ...result }) + "\n");
} catch (err) {
  process.stdout.write(JSON.stringify({ scenario: name, ok: false, error: String(err?.message ?? err),
                                        status: err?.status ?? null }) + "\n");
  process.exit(1);
}
