// Interop: MQTT.js (npm `mqtt` 5.x) over ws:// and wss:// against a running moatd.
//
// `node mqttjs_ws_test.js pubsub URL VERSION` connects a subscriber and a
// publisher (protocolVersion 4 or 5) to URL, subscribes at QoS 1, publishes
// one QoS 1 message and checks that it arrives at QoS 1; prints "ok pubsub".
// `node mqttjs_ws_test.js refused URL VERSION` expects the connection to fail
// (error, or close before CONNACK); prints "refused: <why>".
// For wss://, MOAT_CA (trusted CA file), and optionally MOAT_CERT and MOAT_KEY
// (client certificate), are read; rejectUnauthorized is always true. Every
// wait is bounded by WAIT_MS. Exit 0 on the expected outcome.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
let mqtt;
try {
	mqtt = require('mqtt');
} catch (e) {
	console.error('mqttjs_ws_test: cannot load MQTT.js (run `npm ci` in tests/interop): ' +
		e.message);
	process.exit(2);
}

const WAIT_MS = 8000;

function options(version) {
	const o = { protocolVersion: version, reconnectPeriod: 0, connectTimeout: WAIT_MS };
	if (process.env.MOAT_CA) {
		o.ca = fs.readFileSync(process.env.MOAT_CA);
		o.rejectUnauthorized = true;
	}
	if (process.env.MOAT_CERT) {
		o.cert = fs.readFileSync(process.env.MOAT_CERT);
		o.key = fs.readFileSync(process.env.MOAT_KEY);
	}
	return o;
}

async function pubsub(url, version) {
	const sub = await mqtt.connectAsync(url, { ...options(version), clientId: `wsjs-sub-${version}` });
	const pub = await mqtt.connectAsync(url, { ...options(version), clientId: `wsjs-pub-${version}` });
	const topic = `wsjs/${version}`;
	const got = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`no message within ${WAIT_MS} ms`)), WAIT_MS);
		sub.on('message', (t, payload, packet) => {
			clearTimeout(timer);
			resolve(packet);
		});
	});
	const granted = await sub.subscribeAsync(topic, { qos: 1 });
	assert.deepEqual(granted.map((g) => g.qos), [1]);
	await pub.publishAsync(topic, `via ${url.split(':')[0]}`, { qos: 1 });
	const p = await got;
	assert.equal(p.topic, topic);
	assert.equal(p.qos, 1);
	assert.equal(p.payload.toString(), `via ${url.split(':')[0]}`);
	await Promise.all([sub.endAsync(), pub.endAsync()]);
	console.log('ok pubsub');
	return 0;
}

function refused(url, version) {
	return new Promise((resolve) => {
		const client = mqtt.connect(url, { ...options(version), clientId: 'wsjs-refused' });
		const timer = setTimeout(() => {
			console.log('FAIL: neither connected nor refused');
			client.end(true);
			resolve(1);
		}, WAIT_MS);
		const done = (why, code) => {
			clearTimeout(timer);
			client.end(true);
			if (code === 0)
				console.log(`refused: ${why}`);
			else
				console.log(`FAIL: ${why}`);
			resolve(code);
		};
		client.on('connect', () => done('connected (CONNACK received)', 1));
		client.on('error', (e) => done(e.message || String(e), 0));
		client.on('close', () => done('closed before CONNACK', 0));
	});
}

const [mode, url, version] = process.argv.slice(2);
const run = mode === 'refused' ? refused(url, Number(version)) : pubsub(url, Number(version));
run.then((code) => process.exit(code), (e) => {
	console.error(e.stack || String(e));
	process.exit(1);
});
