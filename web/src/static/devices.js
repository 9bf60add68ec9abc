// The device table: one row per device with online/offline, relay state,
// last reading, last seen, an ON/OFF switch and the state of the last
// command sent from here (pending → acknowledged / failed / timed out).
// Rows are keyed by device id (tr[data-device]); the owner feeds it device
// objects, readings and command results.

import { el, fmtTime, fmtValue } from './dom.js';

const STATUS_TEXT = {
	pending: 'pending…',
	acknowledged: 'acknowledged',
	failed: 'failed',
	timeout: 'timed out: no acknowledgement from the device',
};

export class DeviceTable {
	// tbody: the table body to fill; onSwitch(id, state) runs when a switch
	// button is pressed.
	constructor(tbody, onSwitch) {
		this.tbody = tbody;
		this.onSwitch = onSwitch;
		this.rows = new Map();
		this.commands = new Map();
	}

	ids() {
		return [...this.rows.keys()];
	}

	// Replaces the list with the API's device objects.
	setAll(devices) {
		this.tbody.replaceChildren();
		this.rows.clear();
		for (const d of [...devices].sort((a, b) => a.id.localeCompare(b.id))) {
			this.update(d);
		}
	}

	// Adds or updates one device from a device object (GET /api/devices or
	// an SSE `device` event); fields it lacks keep their value. Returns true
	// when the device is new.
	update(d) {
		if (!d || typeof d.id !== 'string') {
			return false;
		}
		let row = this.rows.get(d.id);
		const isNew = !row;
		if (isNew) {
			row = this.makeRow(d.id);
			this.rows.set(d.id, row);
			this.insertSorted(row);
		}
		Object.assign(row.state, d);
		this.paint(row);
		return isNew;
	}

	// Records a live reading (an SSE `reading` event, carrying "device").
	reading(r) {
		const row = this.rows.get(r.device);
		if (!row) {
			return false;
		}
		const s = row.state;
		if (!s.last || r.time >= s.last.time) {
			s.last = r;
			if (r.relay === 'on' || r.relay === 'off') {
				s.relay = r.relay;
			}
		}
		if (typeof s.last_seen !== 'number' || r.time > s.last_seen) {
			s.last_seen = r.time;
		}
		this.paint(row);
		return true;
	}

	// Shows a command's state for its device: {id?, state, status, reason?}.
	// An acknowledged command sets the relay shown.
	command(device, c) {
		const row = this.rows.get(device);
		if (!row) {
			return;
		}
		this.commands.set(device, c);
		if (c.status === 'acknowledged' && (c.state === 'on' || c.state === 'off')) {
			row.state.relay = c.state;
		}
		const busy = c.status === 'pending';
		row.on.disabled = busy;
		row.off.disabled = busy;
		this.paint(row);
	}

	// The command last shown for a device, or undefined.
	lastCommand(device) {
		return this.commands.get(device);
	}

	// The device whose last command shown has this id, or undefined.
	deviceOfCommand(id) {
		for (const [device, c] of this.commands) {
			if (c.id === id) {
				return device;
			}
		}
		return undefined;
	}

	makeRow(id) {
		const tr = el('tr');
		tr.dataset.device = id;
		const cells = ['id', 'online', 'relay', 'last', 'seen', 'switch', 'cmd'].map((c) => {
			const td = el('td', `col-${c}`);
			tr.append(td);
			return td;
		});
		cells[0].textContent = id;
		const on = el('button', 'switch-on', 'ON');
		const off = el('button', 'switch-off', 'OFF');
		for (const [b, state] of [[on, 'on'], [off, 'off']]) {
			b.type = 'button';
			b.title = `Switch ${id}'s relay ${state}`;
			b.addEventListener('click', () => this.onSwitch(id, state));
		}
		cells[5].append(on, off);
		return { tr, cells, on, off, state: { id } };
	}

	insertSorted(row) {
		const after = [...this.rows.values()].find((r) => r !== row && r.state.id > row.state.id);
		this.tbody.insertBefore(row.tr, after ? after.tr : null);
	}

	paint(row) {
		const s = row.state;
		const [, online, relay, last, seen, , cmd] = row.cells;
		online.textContent = s.online ? 'online' : 'offline';
		online.className = `col-online ${s.online ? 'is-online' : 'is-offline'}`;
		relay.textContent = s.relay === 'on' || s.relay === 'off' ? s.relay.toUpperCase() : '—';
		row.on.setAttribute('aria-pressed', String(s.relay === 'on'));
		row.off.setAttribute('aria-pressed', String(s.relay === 'off'));
		last.textContent = s.last
			? `${fmtValue(s.last.temperature, '°C')}, ${fmtValue(s.last.humidity, '%')}` : '—';
		seen.textContent = fmtTime(s.last_seen);
		const c = this.commands.get(s.id);
		cmd.replaceChildren();
		if (c) {
			let text = `${c.state === 'on' ? 'ON' : 'OFF'}: ${STATUS_TEXT[c.status] || c.status}`;
			if (c.reason) {
				text += ` (${c.reason})`;
			}
			cmd.append(el('span', `cmd cmd-${c.status}`, text));
		}
	}
}
