// Browser test of moat-historian's dashboard: Debian's headless chromium,
// driven by playwright-core (web/node_modules), against tests/web/fake_api.py
// serving the built dashboard (MOAT_WEB_ROOT, default web/dist). It logs in,
// sees a device chart take a live reading, switches devices and sees the
// command's fate (acknowledged, failed, timed out), sees a tamper alert
// raise the banner, changes the time range, logs in again after the session
// ended (a fresh CSRF token), and logs out; no page error or
// CSP violation may occur. Screenshots go to WEB_ARTIFACTS (default
// build/web-artifacts). Exits 77 (skipped) when chromium is missing.
//
//   node tests/web/dashboard.spec.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import * as dash from './browser.mjs';

const { repo } = dash;
const WEB_ROOT = process.env.MOAT_WEB_ROOT || join(repo, 'web', 'dist');
const ARTIFACTS = process.env.WEB_ARTIFACTS || join(repo, 'build', 'web-artifacts');
const WAIT_MS = 8000;

let server;
let base;
let browser;
let page;
let problems;
let shot;

// Starts fake_api.py and resolves to its base URL once it prints its port.
function startServer() {
	server = spawn(process.env.PYTHON3 || 'python3', [join(repo, 'tests', 'web', 'fake_api.py'), '--port', '0',
		'--web-root', WEB_ROOT], { stdio: ['ignore', 'pipe', 'inherit'] });
	return new Promise((ok, fail) => {
		server.on('exit', (code) => fail(new Error(`fake_api.py exited with ${code}`)));
		createInterface({ input: server.stdout }).once('line', (line) => {
			const m = /^PORT (\d+)$/.exec(line);
			return m ? ok(`http://127.0.0.1:${m[1]}`) : fail(new Error(`fake_api.py said ${line}`));
		});
	});
}

async function fake(path, body) {
	const res = await fetch(base + path, body === undefined ? {} : {
		method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
	});
	assert.equal(res.status, 200, `${path} answered ${res.status}`);
	return res.json();
}

const row = (dev) => dash.row(page, dev);
const waitText = (locator, text) => dash.waitText(locator, text, WAIT_MS);
const points = (dev) => dash.points(page, dev);
const step = (t, name, fn) => dash.step(t, shot, name, fn);

before(async () => {
	base = await startServer();
	({ browser, page, problems } = await dash.openBrowser({ width: 1280, height: 900 }));
	shot = dash.screenshots(page, ARTIFACTS);
});

after(async () => {
	await browser?.close();
	server?.kill();
});

test('dashboard against the fake historian', async (t) => {
	await step(t, 'refuses a wrong password with a clear message', async () => {
		await page.goto(base + '/');
		await page.locator('#login-view').waitFor({ timeout: WAIT_MS });
		await page.fill('#login-user', 'admin');
		await page.fill('#login-password', 'wrong');
		await page.click('#login-submit');
		await waitText(page.locator('#login-error'), 'Wrong user name or password.');
		assert.equal(await page.locator('#dash-view').isHidden(), true);
		await shot('00-login-refused');
	});

	await step(t, 'logs in and lists the devices', async () => {
		await page.fill('#login-password', 'admin-password');
		await page.click('#login-submit');
		await waitText(page.locator('#whoami'), 'logged in as admin');
		await waitText(page.locator('#live'), 'live');
		assert.equal(await page.locator('#device-rows tr').count(), 3);
		await waitText(row('dev-1').locator('.col-online'), 'online');
		await waitText(row('dev-3').locator('.col-online'), 'offline');
		await waitText(row('dev-1').locator('.col-relay'), 'ON');
		await page.waitForFunction(() => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]')?.dataset.points) > 0, null, { timeout: WAIT_MS });
		assert.ok(Number(await page.locator('#overview-chart').getAttribute('data-points')) > 0);
		await shot('01-dashboard');
	});

	await step(t, 'adds a live reading to the chart', async () => {
		const before = await points('dev-1');
		await fake('/__fake/reading', { device: 'dev-1', temperature: 42.5, humidity: 55 });
		await page.waitForFunction((n) => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]').dataset.points) === n + 1, before, { timeout: WAIT_MS });
		await waitText(row('dev-1').locator('.col-last'), '42.5 °C, 55.0 %');
		await shot('02-live-reading');
	});

	await step(t, 'switches dev-1 OFF: pending, then acknowledged', async () => {
		await row('dev-1').locator('.switch-off').click();
		await waitText(row('dev-1').locator('.cmd'), 'OFF: pending');
		await waitText(row('dev-1').locator('.cmd-acknowledged'), 'OFF: acknowledged');
		await waitText(row('dev-1').locator('.col-relay'), 'OFF');
		assert.equal(await row('dev-1').locator('.switch-off').getAttribute('aria-pressed'), 'true');
		await shot('03-command-acknowledged');
	});

	await step(t, 'shows a refused command and a timed-out one', async () => {
		await row('dev-2').locator('.switch-off').click();
		await row('dev-3').locator('.switch-off').click();
		await waitText(row('dev-2').locator('.cmd-failed'), 'OFF: failed (stale)');
		await waitText(row('dev-3').locator('.cmd-timeout'), 'timed out');
		await waitText(row('dev-2').locator('.col-relay'), 'ON');
	});

	await step(t, 'raises a tamper alert banner and lists it', async () => {
		assert.equal(await page.locator('#alert-banner').isHidden(), true);
		await fake('/__fake/alert', { device: 'dev-2', kind: 'tamper', detail: 'enclosure opened' });
		await waitText(page.locator('#alert-banner'), 'Tamper alert from dev-2');
		await waitText(page.locator('#alert-banner'), 'enclosure opened');
		await waitText(page.locator('#alert-rows tr'), 'enclosure opened');
		await shot('04-tamper-alert');
		await page.click('#alert-banner-close');
		assert.equal(await page.locator('#alert-banner').isHidden(), true);
	});

	await step(t, 're-queries readings and overview for another range', async () => {
		const seen = (await fake('/__fake/requests')).requests.length;
		await page.selectOption('#range-select', '86400000');
		const spans = async () => (await fake('/__fake/requests')).requests.slice(seen)
			.filter((r) => r.query.from && r.query.to)
			.map((r) => [r.path, Number(r.query.to) - Number(r.query.from)]);
		for (let i = 0; i < 50 && (await spans()).length < 4; i++) {
			await new Promise((ok) => setTimeout(ok, 100));
		}
		const day = (await spans()).filter(([, span]) => span === 86400000).map(([p]) => p).sort();
		assert.deepEqual(day, ['/api/devices/dev-1/readings', '/api/devices/dev-2/readings',
			'/api/devices/dev-3/readings', '/api/overview']);
		await page.waitForFunction(() => Number(document.querySelector(
			'.chart-box[data-device="dev-3"]').dataset.points) > 0, null, { timeout: WAIT_MS });
		await shot('05-range-24h');
	});

	await step(t, 'checks a custom range and applies it', async () => {
		await page.selectOption('#range-select', 'custom');
		await page.fill('#range-from', '2026-01-02T10:00:00');
		await page.fill('#range-to', '2026-01-01T10:00:00');
		await page.click('#range-apply');
		await waitText(page.locator('#range-error'), 'the start must be before the end');
		await page.fill('#range-to', '2026-01-02T11:00:00');
		await page.click('#range-apply');
		await page.locator('#range-error').waitFor({ state: 'hidden', timeout: WAIT_MS });
		const from = await page.evaluate(() => new Date('2026-01-02T10:00:00').getTime());
		await page.waitForFunction(() => Number(document.querySelector(
			'.chart-box[data-device="dev-1"]').dataset.points) === 0, null, { timeout: WAIT_MS });
		const reqs = (await fake('/__fake/requests')).requests;
		assert.ok(reqs.some((r) => r.path === '/api/overview' && Number(r.query.from) === from &&
			Number(r.query.to) === from + 3600000));
	});

	await step(t, 'asks to log in again when the session has ended', async () => {
		await fake('/__fake/expire', {});
		await row('dev-1').locator('.switch-on').click();
		await waitText(page.locator('#login-error'), 'Your session has ended: log in again.');
		assert.equal(await page.locator('#dash-view').isHidden(), true);
		await page.fill('#login-password', 'admin-password');
		await page.click('#login-submit');
		await row('dev-1').locator('.switch-on').click();
		await waitText(row('dev-1').locator('.cmd-acknowledged'), 'ON: acknowledged');
	});

	await step(t, 'logs out', async () => {
		await page.click('#logout');
		await waitText(page.locator('#login-error'), 'Logged out.');
		const res = await page.evaluate(async () => (await fetch('/api/devices')).status);
		assert.equal(res, 401);
	});

	await step(t, 'had no page error and no CSP violation', () => {
		assert.deepEqual(problems.filter((p) => !p.includes('401')), []);
	});
});
