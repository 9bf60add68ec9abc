// Interop: MQTT.js (npm `mqtt` 5.x) against a running moatd.
//
// `node mqttjs_test.js` runs every scenario below for MQTT 3.1.1 and 5 against
// 127.0.0.1:$MOAT_PORT, MQTT.js clients on both sides: QoS 0/1/2, retained
// set/receive/delete, will on a destroyed socket, v5 properties and
// subscription identifiers, a shared subscription group. Exit 0 when all pass.
// `node mqttjs_test.js pub VERSION TOPIC PAYLOAD QOS` publishes one message
// (v5: user property src=mqttjs) and exits, for the Python side's wire checks
// and cross-client tests. Every wait is bounded by WAIT_MS.
//
// With MOAT_PORTS=PORT,PORT (the nodes of a moatd cluster, MOAT_INTEROP_CLUSTER in
// interop.py) clients take the nodes in turn; every subscription, and every retained
// change before a later check, waits until the other nodes have it (probe messages,
// as interop.py does); shared subscriptions run there too (balanced across nodes).
'use strict';

const assert = require('node:assert/strict');
let mqtt;
try {
	mqtt = require('mqtt');
} catch (e) {
	console.error('mqttjs_test: cannot load MQTT.js (run `npm ci` in tests/interop, ' +
		'or `make deps`): ' + e.message);
	process.exit(2);
}

const WAIT_MS = 10000;
const ports = (process.env.MOAT_PORTS || process.env.MOAT_PORT || '').split(',')
	.filter((p) => p).map(Number);
if (!ports.length || ports.some((p) => !p)) {
	console.error('mqttjs_test: MOAT_PORT (or MOAT_PORTS) is not set');
	process.exit(2);
}
let turn = 0;
let probes = 0;

// Connects one client (protocolVersion 4 or 5) to the next node (or to <port>),
// no automatic reconnect.
async function connect(version, extra = {}, port = ports[turn++ % ports.length]) {
	const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
		protocolVersion: version, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...extra,
	});
	client.port = port;
	client.inbox = [];
	client.waiters = [];
	client.on('message', (topic, payload, packet) => {
		const w = client.waiters.shift();
		if (w) w(packet); else client.inbox.push(packet);
	});
	return client;
}

// The next PUBLISH the client receives, or a rejection after ms.
function next(client, ms = WAIT_MS) {
	if (client.inbox.length) return Promise.resolve(client.inbox.shift());
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			client.waiters.splice(client.waiters.indexOf(done), 1);
			reject(new Error(`no message within ${ms} ms`));
		}, ms);
		const done = (p) => { clearTimeout(timer); resolve(p); };
		client.waiters.push(done);
	});
}

// Asserts that nothing arrives for ms.
async function nothing(client, ms = 1000) {
	const p = await next(client, ms).catch(() => null);
	assert.equal(p, null, p && `unexpected message on ${p.topic}: ${p.payload}`);
}

async function subscribe(client, topic, qos, properties) {
	const granted = await client.subscribeAsync(topic, properties ? { qos, properties } : { qos });
	assert.deepEqual(granted.map((g) => g.qos), [qos]);
	await subscribed(client.port);
}

// On a cluster, returns once every other node routes what was just subscribed on
// the node at <port>: a probe subscription made after it there reaches it from each
// other node (a node's interest travels as one list, so the probe's carries it).
async function subscribed(port) {
	if (ports.length === 1) return;
	const topic = `interop-probe/js-${process.pid}-${++probes}`;
	const watcher = await connect(5, {}, port);
	await watcher.subscribeAsync(topic, { qos: 0 });
	for (const other of ports.filter((p) => p !== port)) {
		const sender = await connect(5, {}, other);
		const deadline = Date.now() + WAIT_MS;
		for (;;) {
			assert.ok(Date.now() < deadline, `node ${other} never routed to ${port}`);
			await sender.publishAsync(topic, 'probe', { qos: 0 });
			if (await next(watcher, 300).catch(() => null)) break;
		}
		await sender.endAsync();
	}
	await watcher.endAsync();
}

// On a cluster, returns once a new subscriber on every node gets <payload> as the
// retained message of <topic> (null: none); nodes mirror retained messages asynchronously.
async function retainedEverywhere(topic, payload) {
	if (ports.length === 1) return;
	const deadline = Date.now() + WAIT_MS;
	for (const port of ports) {
		for (;;) {
			const check = await connect(5, {}, port);
			await check.subscribeAsync(topic, { qos: 0 });
			const p = await next(check, 300).catch(() => null);
			await check.endAsync();
			if ((p ? p.payload.toString() : null) === payload) break;
			assert.ok(Date.now() < deadline, `node ${port}: retained ${topic} is not ${payload}`);
		}
	}
}

async function qosBothWays(v) {
	const sub = await connect(v);
	const pub = await connect(v);
	for (const subQos of [0, 1, 2]) {
		const topic = `js/${v}/q${subQos}`;
		await subscribe(sub, topic, subQos);
		for (const pubQos of [0, 1, 2]) {
			await pub.publishAsync(topic, `p${pubQos}`, { qos: pubQos });
			const p = await next(sub);
			assert.equal(p.topic, topic);
			assert.equal(p.payload.toString(), `p${pubQos}`);
			assert.equal(p.qos, Math.min(subQos, pubQos));
			assert.equal(p.retain, false);
		}
	}
	await Promise.all([sub.endAsync(), pub.endAsync()]);
}

async function retained(v) {
	const topic = `js/${v}/retained`;
	const pub = await connect(v);
	await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });
	await retainedEverywhere(topic, 'kept');
	const late = await connect(v);
	await subscribe(late, topic, 1);
	const p = await next(late);
	assert.equal(p.payload.toString(), 'kept');
	assert.equal(p.retain, true);
	assert.equal(p.qos, 1);
	await pub.publishAsync(topic, '', { qos: 1, retain: true });
	await retainedEverywhere(topic, null);
	const later = await connect(v);
	await subscribe(later, topic, 1);
	await nothing(later);
	await Promise.all([pub.endAsync(), late.endAsync(), later.endAsync()]);
}

async function will(v) {
	const topic = `js/${v}/will`;
	const watcher = await connect(v);
	await subscribe(watcher, topic, 1);
	const will = { topic, payload: Buffer.from('js gone'), qos: 1, retain: false };
	if (v === 5) will.properties = { contentType: 'text/plain', userProperties: { why: 'crash' } };
	const victim = await connect(v, { will });
	victim.stream.destroy();	// no DISCONNECT: the broker must publish the will
	const p = await next(watcher);
	assert.equal(p.payload.toString(), 'js gone');
	assert.equal(p.qos, 1);
	if (v === 5) {
		assert.equal(p.properties.contentType, 'text/plain');
		assert.deepEqual({ ...p.properties.userProperties }, { why: 'crash' });
	}
	victim.end(true);
	await watcher.endAsync();
}

async function v5Properties() {
	const sub = await connect(5);
	await subscribe(sub, 'js/5/props', 1, { subscriptionIdentifier: 77 });
	const pub = await connect(5);
	await pub.publishAsync('js/5/props', 'req', {
		qos: 1,
		properties: {
			userProperties: { a: '1', b: ['2', '3'] },
			contentType: 'application/json',
			responseTopic: 'js/5/reply',
			correlationData: Buffer.from([0, 1, 2, 255]),
			messageExpiryInterval: 60,
		},
	});
	const p = await next(sub);
	assert.equal(p.payload.toString(), 'req');
	assert.deepEqual({ ...p.properties.userProperties }, { a: '1', b: ['2', '3'] });
	assert.equal(p.properties.contentType, 'application/json');
	assert.equal(p.properties.responseTopic, 'js/5/reply');
	assert.deepEqual([...p.properties.correlationData], [0, 1, 2, 255]);
	assert.ok([59, 60].includes(p.properties.messageExpiryInterval),
		`message expiry ${p.properties.messageExpiryInterval}`);
	assert.equal(p.properties.subscriptionIdentifier, 77);
	await Promise.all([sub.endAsync(), pub.endAsync()]);
}

async function shared(v) {
	const topic = `js/${v}/shared`;
	const members = [await connect(v), await connect(v)];
	for (const m of members) await subscribe(m, `$share/g/${topic}`, 1);
	const pub = await connect(v);
	const sent = [];
	for (let i = 0; i < 20; i++) { // across nodes each goes to a random node: 20 make "none" unlikely
		sent.push(`s${i}`);
		await pub.publishAsync(topic, `s${i}`, { qos: 1 });
	}
	const got = [[], []];
	const deadline = Date.now() + WAIT_MS;
	while (got[0].length + got[1].length < sent.length && Date.now() < deadline) {
		for (let i = 0; i < 2; i++) {
			const p = await next(members[i], 50).catch(() => null);
			if (p) got[i].push(p.payload.toString());
		}
	}
	for (const m of members) await nothing(m);
	assert.deepEqual([...got[0], ...got[1]].sort(), sent.sort());
	assert.ok(got[0].length > 0 && got[1].length > 0, `one member got nothing: ${got}`);
	await Promise.all([...members, pub].map((c) => c.endAsync()));
}

async function suite() {
	const cases = [];
	for (const v of [4, 5]) {
		cases.push([`qos 0/1/2 both ways v${v}`, () => qosBothWays(v)]);
		cases.push([`retained v${v}`, () => retained(v)]);
		cases.push([`will v${v}`, () => will(v)]);
		cases.push([`shared subscription v${v}`, () => shared(v)]);
	}
	cases.push(['v5 properties and subscription identifier', v5Properties]);
	let failed = 0;
	for (const [name, fn] of cases) {
		try {
			await fn();
			console.log(`ok   ${name}`);
		} catch (e) {
			failed++;
			console.log(`FAIL ${name}: ${e.stack}`);
		}
	}
	return failed ? 1 : 0;
}

async function pubOnce(version, topic, payload, qos) {
	const client = await connect(Number(version));
	const opts = { qos: Number(qos) };
	if (Number(version) === 5) opts.properties = { userProperties: { src: 'mqttjs' } };
	await client.publishAsync(topic, payload, opts);
	await client.endAsync();
	return 0;
}

const [mode, ...args] = process.argv.slice(2);
const run = mode === 'pub' ? pubOnce(...args) : suite();
const guard = setTimeout(() => {
	console.error('mqttjs_test: overall time limit');
	process.exit(3);
}, 120000);
run.then((code) => { clearTimeout(guard); process.exit(code); },
	(e) => { console.error(e.stack); process.exit(1); });
