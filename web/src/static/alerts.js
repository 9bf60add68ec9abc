// Alerts: the history table (GET /api/alerts, newest first, live alerts
// added on top) and the banner that a live alert (SSE `alert`) raises until
// the user dismisses it.

import { $, el, fmtTime, show } from './dom.js';

const MAX_ROWS = 200;

export class Alerts {
	constructor() {
		this.seen = new Set();
		$('alert-banner-close').addEventListener('click', () => show($('alert-banner'), false));
	}

	// Replaces the history with the API's list (newest first).
	setAll(alerts) {
		$('alert-rows').replaceChildren();
		this.seen.clear();
		for (const a of [...alerts].reverse()) {
			this.addRow(a);
		}
		show($('no-alerts'), alerts.length === 0);
	}

	// A live alert: added to the history and shown in the banner. An alert
	// already listed (same id) is not shown twice.
	live(a) {
		if (!this.addRow(a)) {
			return;
		}
		const kind = typeof a.kind === 'string' ? a.kind : 'alert';
		let text = `${kind[0].toUpperCase()}${kind.slice(1)} alert from ${a.device || 'unknown device'}`;
		text += ` at ${fmtTime(a.time)}`;
		if (a.detail) {
			text += `: ${a.detail}`;
		}
		$('alert-banner-text').textContent = text;
		show($('alert-banner'), true);
	}

	addRow(a) {
		if (!a || (a.id !== undefined && this.seen.has(a.id))) {
			return false;
		}
		if (a.id !== undefined) {
			this.seen.add(a.id);
		}
		const tbody = $('alert-rows');
		const tr = el('tr', `alert-${a.kind}`);
		tr.append(el('td', null, fmtTime(a.time)), el('td', null, a.device),
			el('td', null, a.kind), el('td', null, a.detail));
		tbody.prepend(tr);
		while (tbody.rows.length > MAX_ROWS) {
			tbody.deleteRow(-1);
		}
		show($('no-alerts'), tbody.rows.length === 0);
		return true;
	}
}
