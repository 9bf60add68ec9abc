// moat-historian's dashboard: logs in, then shows the devices (online,
// relay, ON/OFF switches with the command's fate), a live chart per device,
// the overview chart and the alerts, for the time range picked; the live
// stream (SSE) keeps everything current. Loaded by index.html as a module.

import * as api from './api.js';
import { Alerts } from './alerts.js';
import { DeviceChart, OverviewChart } from './charts.js';
import { DeviceTable } from './devices.js';
import { $, show } from './dom.js';
import { openEvents } from './events.js';
import { currentRange, initRange } from './range.js';

const READINGS_LIMIT = 10000; // the API's maximum
const OVERVIEW_BUCKETS = 60;
const REFRESH_MS = 30000; // a live range's window slides and the overview reloads this often
const RECONNECT_MS = 5000;

const charts = new Map();
let table = null;
let alerts = null;
let overview = null;
let closeEvents = null;
let timer = null;
let generation = 0; // bumped by every reload, so a late answer to an old one is dropped
const overviewAsked = new Set(); // devices the overview was read again for (overviewLacks)

function showError(message) {
	$('error').textContent = message || '';
	show($('error'), Boolean(message));
}

function setLive(text) {
	$('live').textContent = text;
	$('live').className = `live live-${text.split(/\W/)[0]}`;
}

function stop() {
	generation++;
	if (closeEvents) {
		closeEvents();
		closeEvents = null;
	}
	clearInterval(timer);
	timer = null;
}

function showLogin(message) {
	stop();
	for (const hidden of ['dash-view', 'logout', 'whoami', 'live']) {
		show($(hidden), false);
	}
	show($('login-view'), true);
	const err = $('login-error');
	err.textContent = message || '';
	show(err, Boolean(message));
	$('login-user').focus();
}

function sessionExpired() {
	showError('');
	showLogin('Your session has ended: log in again.');
}

// Shows an API error; a 401 means the session is gone.
function failed(err) {
	if (err instanceof api.ApiError && err.status === 401) {
		sessionExpired();
		return;
	}
	showError(err.message);
}

function chartFor(id) {
	let c = charts.get(id);
	if (!c) {
		c = new DeviceChart($('device-charts'), id, currentRange());
		charts.set(id, c);
	}
	return c;
}

async function loadReadings(id, range, gen) {
	const rows = await api.readings(id, range.from, range.to, READINGS_LIMIT);
	if (gen === generation) {
		chartFor(id).setReadings(rows, range, rows.length >= READINGS_LIMIT);
	}
}

async function loadOverview(range, gen) {
	const buckets = await api.overview(range.from, range.to, OVERVIEW_BUCKETS);
	if (gen === generation) {
		overview.setBuckets(buckets, range);
	}
}

// Loads everything for the range in force.
async function reload() {
	const gen = ++generation;
	overviewAsked.clear();
	const range = currentRange();
	try {
		const [devices, list] = await Promise.all([api.devices(), api.alerts(100)]);
		if (gen !== generation) {
			return;
		}
		table.setAll(devices);
		alerts.setAll(list);
		show($('no-devices'), devices.length === 0);
		for (const [id, c] of charts) {
			if (!devices.some((d) => d.id === id)) {
				c.destroy();
				charts.delete(id);
			}
		}
		for (const d of [...devices].sort((a, b) => a.id.localeCompare(b.id))) {
			chartFor(d.id);
		}
		await Promise.all([loadOverview(range, gen),
			...devices.map((d) => loadReadings(d.id, range, gen))]);
		if (gen === generation) {
			showError('');
		}
	} catch (err) {
		failed(err);
	}
}

async function sendCommand(id, state) {
	table.command(id, { state, status: 'pending' });
	try {
		const res = await api.command(id, state);
		table.command(id, res);
	} catch (err) {
		if (err instanceof api.ApiError && err.status === 401) {
			sessionExpired();
			return;
		}
		table.command(id, { state, status: 'failed', reason: err.message });
	}
}

// A device first heard of from the live stream (it reported after the page
// loaded): its stored readings are read.
function deviceAdded(id) {
	show($('no-devices'), false);
	loadReadings(id, currentRange(), generation).catch(failed);
}

// A live reading of a device the overview has no line for (it began
// reporting after the overview was read): the overview is read again, once
// per device until the next reload.
function overviewLacks(id, range) {
	if (!overview.has(id) && !overviewAsked.has(id)) {
		overviewAsked.add(id);
		loadOverview(range, generation).catch(failed);
	}
}

function onReading(r) {
	if (typeof r.device !== 'string') {
		return;
	}
	const range = currentRange();
	const inRange = r.time >= range.from && r.time <= range.to;
	if (!table.reading(r)) {
		table.update({ id: r.device, online: true, relay: r.relay ?? null, last_seen: r.time, last: r });
		deviceAdded(r.device);
	} else if (inRange) {
		chartFor(r.device).addReading(r, range);
	}
	if (inRange) {
		overviewLacks(r.device, range);
	}
}

function onDevice(d) {
	if (table.update(d)) {
		deviceAdded(d.id);
	}
}

// A command's state from the stream: shown when it is the device's latest
// command, or the pending one sent from here (whose id the POST has not
// returned yet), or when nothing was sent from here. An event without
// "device" can only update a command whose id is known here.
function onCommand(c) {
	const device = typeof c.device === 'string' ? c.device : table.deviceOfCommand(c.id);
	if (!device) {
		return;
	}
	const last = table.lastCommand(device);
	if (!last || last.id === c.id ||
		(last.status === 'pending' && !last.id && last.state === c.state)) {
		table.command(device, c);
	}
}

function onStreamState(s) {
	if (s === 'live') {
		setLive('live');
		return;
	}
	setLive(s === 'closed' ? 'disconnected' : 'reconnecting…');
	if (s !== 'closed') {
		return;
	}
	closeEvents = null;
	const gen = generation;
	setTimeout(async () => {
		if (gen !== generation) {
			return;
		}
		try {
			if (!(await api.me())) {
				sessionExpired();
				return;
			}
			openStream();
		} catch (err) {
			failed(err);
			onStreamState('closed');
		}
	}, RECONNECT_MS);
}

function openStream() {
	closeEvents = openEvents({
		reading: onReading,
		device: onDevice,
		command: onCommand,
		alert: (a) => alerts.live(a),
		state: onStreamState,
	});
}

function enter(me) {
	show($('login-view'), false);
	show($('login-error'), false);
	$('whoami').textContent = `logged in as ${me.user}`;
	for (const shown of ['dash-view', 'logout', 'whoami', 'live']) {
		show($(shown), true);
	}
	setLive('connecting…');
	openStream();
	timer = setInterval(() => {
		const range = currentRange();
		if (range.live) {
			loadOverview(range, generation).catch(failed);
			for (const c of charts.values()) {
				c.slide(range);
			}
		}
	}, REFRESH_MS);
	reload();
}

async function onLogin(ev) {
	ev.preventDefault();
	const user = $('login-user').value.trim();
	const password = $('login-password').value;
	const button = $('login-submit');
	button.disabled = true;
	try {
		const me = await api.login(user, password);
		$('login-password').value = '';
		enter(me);
	} catch (err) {
		const message = err.status === 401 ? 'Wrong user name or password.' : err.message;
		showLogin(message);
	} finally {
		button.disabled = false;
	}
}

async function onLogout() {
	try {
		await api.logout();
	} catch (err) {
		showError(err.message);
	}
	showLogin('Logged out.');
}

async function boot() {
	table = new DeviceTable($('device-rows'), sendCommand);
	alerts = new Alerts();
	overview = new OverviewChart($('overview-chart'));
	initRange(() => reload());
	$('login-form').addEventListener('submit', onLogin);
	$('logout').addEventListener('click', onLogout);
	window.addEventListener('resize', () => {
		overview.resize();
		for (const c of charts.values()) {
			c.resize($('device-charts'));
		}
	});
	try {
		const me = await api.me();
		if (me) {
			enter(me);
		} else {
			showLogin('');
		}
	} catch (err) {
		showLogin(err.message);
	}
}

boot();
