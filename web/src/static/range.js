// The time-range picker: last 15 min / 1 h / 24 h (live: the window follows
// the clock and live readings are added) or a custom from–to (fixed). Tells
// the dashboard through a callback when the user picks another range.

import { $, show } from './dom.js';

let choice = { span_ms: 3600000 };

// The range in force: {from, to} in Unix ms and live (true for "last ...").
export function currentRange() {
	if (choice.span_ms) {
		const to = Date.now();
		return { from: to - choice.span_ms, to, live: true };
	}
	return { from: choice.from, to: choice.to, live: false };
}

// datetime-local wants local time as YYYY-MM-DDTHH:MM:SS.
function toLocalInput(ms) {
	const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
	return d.toISOString().slice(0, 19);
}

function rangeError(message) {
	const el = $('range-error');
	el.textContent = message || '';
	show(el, Boolean(message));
}

function applyCustom(onChange) {
	const fromText = $('range-from').value;
	const toText = $('range-to').value;
	if (!fromText || !toText) {
		rangeError('pick both a start and an end');
		return;
	}
	const from = new Date(fromText).getTime();
	const to = new Date(toText).getTime();
	if (!Number.isFinite(from) || !Number.isFinite(to)) {
		rangeError('the start or the end is not a valid date');
		return;
	}
	if (from >= to) {
		rangeError('the start must be before the end');
		return;
	}
	rangeError('');
	choice = { from, to };
	onChange(currentRange());
}

// Wires the picker; onChange(range) runs after each change of range.
export function initRange(onChange) {
	const select = $('range-select');
	select.addEventListener('change', () => {
		rangeError('');
		if (select.value === 'custom') {
			const r = currentRange();
			$('range-from').value = toLocalInput(r.from);
			$('range-to').value = toLocalInput(r.to);
			show($('range-custom'), true);
			return;
		}
		show($('range-custom'), false);
		choice = { span_ms: Number(select.value) };
		onChange(currentRange());
	});
	$('range').addEventListener('submit', (ev) => {
		ev.preventDefault();
		if (select.value === 'custom') {
			applyCustom(onChange);
		}
	});
}
