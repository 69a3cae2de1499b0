import express from "express";
import { Tokend, tokendExpress } from "@tokend/sdk";

const tokend = new Tokend({ baseUrl: process.env.TOKEND_URL! }); // no admin token needed to verify
const { valid, code, token } = await tokend.verify(process.env.SECRET!, { permissions: ["orders:read"] });
console.log(valid, code, token?.name); // true VALID deploy bot

const app = express(); // GET needs read access, POST write; 401, 403, 429 otherwise
app.get("/orders", tokendExpress(tokend), (req, res) => { res.send(`hello ${req.tokend!.name}\n`); });
app.listen(Number(process.env.PORT ?? 3000));
