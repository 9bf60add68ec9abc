// Small DOM and formatting helpers shared by the dashboard's modules. Text
// from the historian goes in with textContent only, never as HTML.

// The element with this id (the page's ids are fixed in index.html).
export function $(id) {
	return document.getElementById(id);
}

export function show(node, visible) {
	node.hidden = !visible;
}

// A new element with a class and text content (both optional).
export function el(tag, className, text) {
	const node = document.createElement(tag);
	if (className) {
		node.className = className;
	}
	if (text !== undefined && text !== null) {
		node.textContent = String(text);
	}
	return node;
}

// Unix ms as local date and time, or a dash when absent.
export function fmtTime(ms) {
	if (typeof ms !== 'number' || !Number.isFinite(ms)) {
		return '—';
	}
	return new Date(ms).toLocaleString();
}

// A number with one decimal and a unit, or a dash when absent.
export function fmtValue(v, unit) {
	if (typeof v !== 'number' || !Number.isFinite(v)) {
		return '—';
	}
	return `${v.toFixed(1)} ${unit}`;
}
