// Builds moat-historian's dashboard into a directory the historian serves
// (--web-root): the files of web/src as they are, plus uPlot copied from
// node_modules into static/vendor/, so nothing is loaded from a CDN at run
// time. Installs node_modules first with `npm ci` (from the committed
// package-lock.json) when they are missing or older than the lockfile.
//
//   node web/build.mjs OUTDIR
//
// OUTDIR is emptied and written anew: index.html, static/*.js, static/*.css,
// static/vendor/uPlot.esm.js, static/vendor/uPlot.min.css, static/vendor/LICENSE.uPlot.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// The files taken from npm packages: [package-relative source, dist-relative target].
const vendored = [
	['uplot/dist/uPlot.esm.js', 'static/vendor/uPlot.esm.js'],
	['uplot/dist/uPlot.min.css', 'static/vendor/uPlot.min.css'],
	['uplot/LICENSE', 'static/vendor/LICENSE.uPlot'],
];

function fail(message) {
	console.error(`web build: ${message}`);
	process.exit(1);
}

// npm ci when node_modules is absent or older than the lockfile (npm ci
// writes node_modules/.package-lock.json as its last step).
function ensureModules() {
	const lock = join(here, 'package-lock.json');
	const stamp = join(here, 'node_modules', '.package-lock.json');
	if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) {
		return;
	}
	console.log('web build: npm ci');
	try {
		execFileSync('npm', ['ci', '--silent', '--no-audit', '--no-fund'], {
			cwd: here,
			stdio: 'inherit',
		});
	} catch (err) {
		fail(`npm ci failed in ${here} (${err.message}); run scripts/deps.sh or check npm's registry access`);
	}
}

function build(out) {
	ensureModules();
	for (const [from] of vendored) {
		if (!existsSync(join(here, 'node_modules', from))) {
			fail(`node_modules/${from} is missing; remove web/node_modules and build again`);
		}
	}
	rmSync(out, { recursive: true, force: true });
	mkdirSync(out, { recursive: true });
	cpSync(join(here, 'src'), out, { recursive: true });
	for (const [from, to] of vendored) {
		mkdirSync(dirname(join(out, to)), { recursive: true });
		cpSync(join(here, 'node_modules', from), join(out, to));
	}
	console.log(`web build: wrote ${out}`);
}

if (process.argv.length !== 3) {
	fail('usage: node build.mjs OUTDIR');
}
build(resolve(process.argv[2]));
