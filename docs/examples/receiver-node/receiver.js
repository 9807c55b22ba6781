// Receives Fineline's webhooks and checks their signatures (Standard
// Webhooks v1) with Node's own crypto; no dependencies.
//   FINELINE_WEBHOOK_SECRET=whsec_... PORT=8443 node receiver.js
const http = require("node:http");
const crypto = require("node:crypto");

const secret = Buffer.from(process.env.FINELINE_WEBHOOK_SECRET.replace(/^whsec_/, ""), "base64");
const seen = new Set(); // webhook-ids handled (keep them in your database)
const latest = new Map(); // per subject, the highest seq applied

function verified(headers, body) {
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"];
  if (!id || !ts || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = crypto.createHmac("sha256", secret).update(`${id}.${ts}.`).update(body).digest();
  return (headers["webhook-signature"] || "").split(" ").some((s) => {
    const [version, sig] = s.split(",");
    const got = Buffer.from(sig || "", "base64");
    return version === "v1" && got.length === expected.length && crypto.timingSafeEqual(got, expected);
  });
}

http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method !== "POST" || !verified(req.headers, body)) return res.writeHead(401).end();
    const id = req.headers["webhook-id"];
    const { type, data } = JSON.parse(body);
    if (seen.has(id) || data.seq <= (latest.get(data.subject) || 0)) return res.writeHead(204).end();
    seen.add(id);
    latest.set(data.subject, data.seq);
    // Apply it: e.g. unsubscribe data.subject on consent.withdrawn.
    console.log("verified", id, type, data.subject, data.purpose, data.seq);
    res.writeHead(204).end();
  });
}).listen(Number(process.env.PORT), "127.0.0.1");
