// Browser test of the dashboard against the REAL system: scripts/demo.sh
// (`make demo`) with this build's programs (MOAT_DEMO_BIN) and dashboard
// (MOAT_WEB_ROOT) in a fresh state directory, on free ports, with 3 devices
// and a reading every second: moatd (mutual TLS), moat-sc serve,
// moat-historian and moat-device. Debian's headless chromium logs in with
// the admin password the demo generated, sees the three devices online, sees
// a device chart gain points from live readings (also in a custom range),
// switches a device ON and then OFF (pending → acknowledged by the simulated
// device, the relay column following), raises a tamper alert with
// `moat-device --tamper` and sees the banner, the alert history and the
// device going offline (revoked); no page error or CSP violation may occur.
// Then Ctrl-C (SIGINT) must stop everything; on failure the demo's process
// group is killed. Screenshots go to WEB_ARTIFACTS (stack-*.png) and, when
// MOAT_DOCS_IMG names a directory, the ones docs/quickstart.md shows go
// there too (MOAT_DOCS_IMG=$PWD/docs/img ctest --test-dir build/dev -R
// web.stack). Exits 77 (skipped) when chromium is missing.
//
//   MOAT_DEMO_BIN=build/dev/bin MOAT_WEB_ROOT=build/dev/web/dist node tests/web/stack.spec.mjs

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import * as dash from './browser.mjs';

const { repo } = dash;
const BIN = resolve(process.env.MOAT_DEMO_BIN || join(repo, 'build', 'dev', 'bin'));
const WEB_ROOT = resolve(process.env.MOAT_WEB_ROOT || join(repo, 'build', 'dev', 'web', 'dist'));
const ARTIFACTS = process.env.WEB_ARTIFACTS || join(repo, 'build', 'web-artifacts');
const DOCS_IMG = process.env.MOAT_DOCS_IMG;
const WAIT_MS = 20000; // real processes on a shared machine under ASan
const START_MS = 60000;
const STOP_MS = 30000;
const WATCHDOG_MS = 110000; // the whole run, so CTest's timeout never leaves the demo behind

const tmp = mkdtempSync(join(tmpdir(), 'moat-web-stack-'));
const state = join(tmp, 'state');
let demo;
let demoExit;
let output = '';
let browser;
let page;
let problems;
let shot;
let docShot = async () => {};

const row = (dev) => dash.row(page, dev);
const waitText = (locator, text) => dash.waitText(locator, text, WAIT_MS);
const points = (dev) => dash.points(page, dev);
const step = (t, name, fn) => dash.step(t, shot, name, fn);

// Whether a loopback TCP port can be listened on now.
function canListen(port) {
	return new Promise((ok) => {
		const srv = createServer().once('error', () => ok(false))
			.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
	});
}

// A port P with P and P + 1 free now (the demo puts the Security Center's
// listener on the MQTT port + 1), below the kernel's ephemeral range so
// outgoing connections of other tests on this machine cannot take it
// before the demo binds it (the demo takes the next free one if it is
// taken anyway, and prints what it took).
async function freePorts() {
	for (let i = 0; i < 100; i++) {
		const port = 20000 + 2 * Math.floor(Math.random() * 5000);
		if ((await canListen(port)) && (await canListen(port + 1))) {
			return port;
		}
	}
	throw new Error('no free port pair in 20000..29999');
}

// Resolves once check() is true; fails when it throws or after ms.
function until(what, ms, check) {
	return new Promise((ok, fail) => {
		const deadline = Date.now() + ms;
		const timer = setInterval(() => {
			try {
				if (check()) {
					clearInterval(timer);
					ok();
				} else if (Date.now() > deadline) {
					throw new Error(`${what} within ${ms / 1000} s; the demo said:\n${output}`);
				}
			} catch (err) {
				clearInterval(timer);
				fail(err);
			}
		}, 100);
	});
}

// Starts scripts/demo.sh in its own process group; resolves to the
// dashboard's URL once the demo says it is up.
async function startDemo() {
	const env = {
		...process.env, MOAT_DEMO_DIR: state, MOAT_DEMO_DEVICES: '3', MOAT_DEMO_INTERVAL: '1',
		MOAT_DEMO_MQTT_PORT: String(await freePorts()), MOAT_DEMO_HTTP_PORT: String(await freePorts()),
		MOAT_DEMO_BIN: BIN, MOAT_DEMO_WEB: WEB_ROOT,
	};
	demo = spawn('bash', [join(repo, 'scripts', 'demo.sh')], {
		cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
	});
	demoExit = new Promise((ok) => demo.once('exit', (code, signal) => ok({ code, signal })));
	for (const stream of [demo.stdout, demo.stderr]) {
		stream.on('data', (chunk) => { output += chunk; });
	}
	await until('the demo did not come up', START_MS, () => {
		assert.equal(demo.exitCode, null, `the demo ended:\n${output}`);
		return output.includes('Ctrl-C stops everything');
	});
	return /Dashboard:\s+(http:\/\/\S+)/.exec(output)[1];
}

// On failure: the whole process group, at once.
function killDemo() {
	if (demo && demo.exitCode === null && demo.signalCode === null) {
		try {
			process.kill(-demo.pid, 'SIGKILL');
		} catch {
			// already gone
		}
	}
}

const watchdog = setTimeout(() => {
	console.error(`stack.spec: still running after ${WATCHDOG_MS / 1000} s; killing the demo`);
	killDemo();
	process.exit(1);
}, WATCHDOG_MS);

before(async () => {
	({ browser, page, problems } = await dash.openBrowser({ width: 1200, height: 800 }));
	shot = dash.screenshots(page, ARTIFACTS);
	if (DOCS_IMG) {
		// target: a locator (that element only) or page.screenshot's options
		// (the top of the page)
		const docs = dash.screenshots(page, DOCS_IMG);
		docShot = async (name, target = { fullPage: false }) => {
			if (target.screenshot) {
				return target.screenshot({ path: join(DOCS_IMG, `${name}.png`) });
			}
			await page.evaluate(() => window.scrollTo(0, 0));
			return docs(name, target);
		};
	}
});

after(async () => {
	clearTimeout(watchdog);
	await browser?.close();
	killDemo();
	try {
		cpSync(join(state, 'logs'), join(ARTIFACTS, 'stack-logs'), { recursive: true });
	} catch {
		// the demo never got as far as writing logs
	}
	rmSync(tmp, { recursive: true, force: true });
});

test('dashboard against the real system (scripts/demo.sh)', async (t) => {
	await step(t, 'starts the demo and logs in with the generated admin password', async () => {
		const url = await startDemo();
		const password = readFileSync(join(state, 'admin.pw'), 'utf8').trim();
		assert.ok(output.includes(`admin / ${password}`), 'the demo prints the login');
		await page.goto(url);
		await page.locator('#login-view').waitFor({ timeout: WAIT_MS });
		await page.fill('#login-user', 'admin');
		await page.fill('#login-password', password);
		await docShot('quickstart-login', { clip: { x: 0, y: 0, width: 1200, height: 420 } });
		await page.click('#login-submit');
		await waitText(page.locator('#whoami'), 'logged in as admin');
		await waitText(page.locator('#live'), 'live');
	});

	await step(t, 'lists the three devices online', async () => {
		await page.waitForFunction(() => document.querySelectorAll('#device-rows tr').length === 3,
			null, { timeout: WAIT_MS });
		for (const dev of ['dev-1', 'dev-2', 'dev-3']) {
			await waitText(row(dev).locator('.col-online'), 'online');
		}
		// devices that report after the login join the overview too
		await page.waitForFunction(() => Number(document.getElementById('overview-chart')
			.dataset.points) >= 3, null, { timeout: WAIT_MS });
		await shot('stack-01-devices');
	});

	await step(t, 'adds live readings to the chart', async () => {
		await page.waitForFunction(() => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]')?.dataset.points) > 0, null, { timeout: WAIT_MS });
		const before = await points('dev-1');
		const seen = await row('dev-1').locator('.col-seen').textContent();
		await page.waitForFunction((n) => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]').dataset.points) > n, before, { timeout: WAIT_MS });
		await page.waitForFunction((s) => document.querySelector(
			'#device-rows tr[data-device="dev-1"] .col-seen').textContent !== s, seen,
			{ timeout: WAIT_MS });
		await shot('stack-02-live-chart');
		await docShot('quickstart-dashboard');
	});

	await step(t, 'zooms to a custom two-minute range that live readings keep filling', async () => {
		const [from, to] = await page.evaluate(() => {
			const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000)
				.toISOString().slice(0, 19);
			return [local(Date.now() - 60000), local(Date.now() + 60000)];
		});
		await page.selectOption('#range-select', 'custom');
		await page.fill('#range-from', from);
		await page.fill('#range-to', to);
		await page.click('#range-apply');
		await page.waitForFunction(() => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]').dataset.points) > 0, null, { timeout: WAIT_MS });
		const before = await points('dev-1');
		await page.waitForFunction((n) => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]').dataset.points) > n, before, { timeout: WAIT_MS });
		if (DOCS_IMG) { // a chart worth showing: half a minute of readings
			await page.waitForFunction(() => Number(document.querySelector(
				'.chart-box[data-device="dev-1"]').dataset.points) >= 30, null, { timeout: 45000 });
			await docShot('quickstart-chart', page.locator('.chart-box[data-device="dev-1"]'));
		}
		await shot('stack-03-custom-range');
	});

	await step(t, 'switches dev-2 ON, then OFF: pending, then acknowledged by the device', async () => {
		// every text the command cell shows, since "pending…" may last only briefly
		await page.evaluate(() => {
			const cell = document.querySelector('#device-rows tr[data-device="dev-2"] .col-cmd');
			window.cmdTexts = [];
			new MutationObserver(() => window.cmdTexts.push(cell.textContent))
				.observe(cell, { childList: true, subtree: true, characterData: true });
		});
		await row('dev-2').locator('.switch-on').click();
		await waitText(row('dev-2').locator('.cmd-acknowledged'), 'ON: acknowledged');
		await waitText(row('dev-2').locator('.col-relay'), 'ON');
		await row('dev-2').locator('.switch-off').click();
		await waitText(row('dev-2').locator('.cmd-acknowledged'), 'OFF: acknowledged');
		await waitText(row('dev-2').locator('.col-relay'), 'OFF');
		assert.equal(await row('dev-2').locator('.switch-off').getAttribute('aria-pressed'), 'true');
		const texts = await page.evaluate(() => window.cmdTexts);
		const pending = texts.indexOf('OFF: pending…');
		assert.ok(pending >= 0 && texts.indexOf('OFF: acknowledged') > pending, texts.join(' | '));
		await shot('stack-04-command-acknowledged');
		await docShot('quickstart-switch', page.locator('table.devices'));
	});

	await step(t, 'raises a tamper alert with moat-device --tamper: banner and history', async () => {
		assert.equal(await page.locator('#alert-banner').isHidden(), true);
		execFileSync(join(BIN, 'moat-device'), ['--bundles', join(state, 'devices'), '--tamper', 'dev-3'],
			{ timeout: WAIT_MS, stdio: ['ignore', 'inherit', 'inherit'] });
		await waitText(page.locator('#alert-banner'), 'Tamper alert from dev-3');
		await waitText(page.locator('#alert-rows tr'), 'dev-3');
		await waitText(page.locator('#alert-rows tr'), 'tamper');
		await shot('stack-05-tamper-alert');
		await waitText(row('dev-3').locator('.col-online'), 'offline'); // revoked by moat-sc
		await docShot('quickstart-alert');
	});

	await step(t, 'had no page error and no CSP violation', () => {
		// the first GET /api/me before logging in answers 401 by design
		assert.deepEqual(problems.filter((p) => !p.includes('401')), []);
	});

	await step(t, 'stops everything on Ctrl-C', async () => {
		process.kill(-demo.pid, 'SIGINT');
		const timeout = new Promise((ok) => setTimeout(ok, STOP_MS, 'still running').unref());
		const exit = await Promise.race([demoExit, timeout]);
		assert.deepEqual(exit, { code: 0, signal: null }, output);
		assert.ok(output.includes('== stopped'), output);
		const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n')
			.filter((line) => line.includes(state));
		assert.deepEqual(left, [], 'processes left running');
	});
});
