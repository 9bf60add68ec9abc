// What the dashboard's browser tests share: Debian's headless chromium
// driven by playwright-core (from web/node_modules), a page that records
// page errors and console errors, screenshots, test steps that leave
// failure.png behind, and the dashboard's parts by their ids and classes.
// Importing it exits 77 (skipped) when chromium is missing.

import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

if (!existsSync(CHROMIUM)) {
	console.log(`SKIP: ${CHROMIUM} is missing (apt-get install chromium; scripts/deps.sh does)`);
	process.exit(77);
}
const { chromium } = createRequire(join(repo, 'web', 'package.json'))('playwright-core');

// Starts chromium with one page. Returns {browser, page, problems}: problems
// collects page errors and console errors (CSP violations are console errors).
export async function openBrowser(viewport) {
	const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
	const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
	const page = await browser.newPage({ viewport });
	const problems = [];
	page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
	page.on('console', (msg) => {
		if (msg.type() === 'error') {
			problems.push(`console: ${msg.text()} (${msg.location().url})`);
		}
	});
	return { browser, page, problems };
}

// A function that saves a screenshot of the page as NAME.png in each of dirs
// (created when missing); options go to page.screenshot.
export function screenshots(page, ...dirs) {
	for (const dir of dirs) {
		mkdirSync(dir, { recursive: true });
	}
	return async (name, options = { fullPage: true }) => {
		for (const dir of dirs) {
			await page.screenshot({ ...options, path: join(dir, `${name}.png`) });
		}
	};
}

let stepFailed = false;

// One step of a walk through the dashboard (a node:test subtest); a failing
// step saves failure.png with shot before it fails, and the steps after it
// are skipped (each builds on the ones before).
export function step(t, shot, name, fn) {
	const skip = stepFailed ? 'an earlier step failed' : false;
	return t.test(name, { skip }, async () => {
		try {
			await fn();
		} catch (err) {
			stepFailed = true;
			await shot('failure').catch(() => {});
			throw err;
		}
	});
}

// The device table's row of a device.
export function row(page, dev) {
	return page.locator(`#device-rows tr[data-device="${dev}"]`);
}

// Waits until one of the locator's elements contains text.
export function waitText(locator, text, timeout) {
	return locator.filter({ hasText: text }).first().waitFor({ timeout });
}

// How many points a device's chart draws.
export async function points(page, dev) {
	return Number(await page.locator(`.chart-box[data-device="${dev}"]`).getAttribute('data-points'));
}
