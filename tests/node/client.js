'use strict';
// A node-soap client of the gateway, as a JavaScript integrator would write it (tests/test_soap_clients.py runs it
// against a real gunicorn-served gateway on 127.0.0.1).
//
// Usage: node client.js JOB.json   — JOB = {wsdl, send: {system, secret, package}, receive?: {system, secret, organId}}
// ``package`` is a file path. The client loads the WSDL the gateway serves (?wsdl), authenticates with node-soap's
// own WSSecurity (UsernameToken PasswordDigest), sends the package, and — when ``receive`` is given — lists the
// recipient's mailbox, fetches the delivery and acknowledges it. It prints ONE JSON object on stdout: the answers,
// or {fault: {code, faultcode, faultstring}} with the gateway's stable code from detail/GatewayError/code.

const fs = require('fs');
const soap = require('soap');

async function connect(wsdl, system, secret) {
  const client = await soap.createClientAsync(wsdl);
  client.setSecurity(new soap.WSSecurity(system, secret, { passwordType: 'PasswordDigest' }));
  return client;
}

// The Fault as the gateway publishes it: faultcode, faultstring and detail/GatewayError/code.
function fault(err) {
  const body = err && err.root && err.root.Envelope && err.root.Envelope.Body;
  if (!body || !body.Fault) {
    throw err; // not a SOAP Fault (transport error, WSDL problem): let the test see the stack
  }
  const f = body.Fault;
  const detail = f.detail && f.detail.GatewayError;
  return { fault: { code: detail ? detail.code : null, faultcode: f.faultcode, faultstring: f.faultstring } };
}

async function run(job) {
  const sender = await connect(job.wsdl, job.send.system, job.send.secret);
  const data = fs.readFileSync(job.send.package);
  const [sent] = await sender.SendEdocAsync({ edxmlPackage: data.toString('base64') });
  const out = { receipt: sent.receipt };
  if (!job.receive) {
    return out;
  }
  const receiver = await connect(job.wsdl, job.receive.system, job.receive.secret);
  const [listed] = await receiver.GetPendingListAsync({ organId: job.receive.organId, kind: 'edoc', limit: 10 });
  const items = listed && listed.item ? [].concat(listed.item) : [];
  out.pending = items;
  const deliveryId = items[0].deliveryId;
  const [fetched] = await receiver.GetEdocAsync({ deliveryId });
  out.fetched = fetched.edxmlPackage; // base64 as it came on the wire
  const [acked] = await receiver.AcknowledgeAsync({ deliveryId, status: 'done' });
  out.acknowledged = acked.ok;
  const [after] = await receiver.GetPendingListAsync({ organId: job.receive.organId, kind: 'edoc', limit: 10 });
  out.pendingAfter = after && after.item ? [].concat(after.item).length : 0;
  return out;
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  let out;
  try {
    out = await run(job);
  } catch (err) {
    out = fault(err);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
