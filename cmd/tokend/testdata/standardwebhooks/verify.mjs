// Verifies webhook deliveries with the Standard Webhooks library, an
// implementation independent of tokend's. Reads a JSON array of
// {secret, headers, body} from standard input and writes, for each, the
// event id the library accepted, or "ERROR <why>".
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
for (const c of JSON.parse(input)) {
  try {
    const payload = new Webhook(c.secret).verify(c.body, c.headers);
    console.log(payload.id);
  } catch (e) {
    console.log("ERROR " + e.message);
  }
}
