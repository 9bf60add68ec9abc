// The dashboard's charts, drawn with uPlot (vendored from npm into
// static/vendor/ at build time): one chart per device (temperature and
// humidity over the chosen range, live readings appended) and the overview
// (average temperature of every device per time bucket). Each chart's
// container carries data-points (how many points are drawn) for the tests.

import uPlot from './vendor/uPlot.esm.js';
import { el } from './dom.js';

const HEIGHT = 220;
const PALETTE = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
	'#17becf', '#7f7f7f', '#bcbd22'];

function width(node) {
	return Math.max(300, (node.clientWidth || 640) - 16);
}

function unitValue(unit) {
	return (u, v) => (v === null || v === undefined ? '—' : `${v.toFixed(1)} ${unit}`);
}

// The x scale always spans the chosen range, so an empty stretch shows as
// empty rather than stretching the data over the whole width.
function xScale(owner) {
	return { time: true, range: () => [owner.range.from / 1000, owner.range.to / 1000] };
}

// Temperature and humidity of one device. range: {from, to} in Unix ms.
export class DeviceChart {
	constructor(container, id, range) {
		this.id = id;
		this.range = range;
		this.rows = [];
		this.box = el('div', 'chart-box');
		this.box.dataset.device = id;
		this.box.append(el('h3', null, id));
		this.empty = el('p', 'muted', 'No readings in this range.');
		this.note = el('p', 'muted');
		this.note.hidden = true;
		this.plotNode = el('div', 'chart');
		this.box.append(this.plotNode, this.empty, this.note);
		container.append(this.box);
		this.plot = new uPlot({
			width: width(container),
			height: HEIGHT,
			scales: { x: xScale(this), t: {}, h: { range: [0, 100] } },
			series: [
				{},
				{ label: 'Temperature', scale: 't', stroke: PALETTE[0], width: 2,
					value: unitValue('°C') },
				{ label: 'Humidity', scale: 'h', stroke: PALETTE[1], width: 1,
					value: unitValue('%') },
			],
			axes: [
				{},
				{ scale: 't', label: '°C' },
				{ scale: 'h', label: '%', side: 1, grid: { show: false } },
			],
		}, [[], [], []], this.plotNode);
		this.redraw();
	}

	// Replaces the data: readings as the API returns them (newest first).
	// truncated: the API's limit was reached, so older readings of the range
	// are missing (the chart says so).
	setReadings(readings, range, truncated) {
		this.range = range;
		this.note.textContent = truncated
			? `Showing the newest ${readings.length} readings of the range only.` : '';
		this.note.hidden = !truncated;
		this.rows = readings.filter((r) => typeof r.time === 'number')
			.sort((a, b) => a.time - b.time);
		this.redraw();
	}

	// Adds one live reading and slides the window to range (dropping what
	// fell out of it). A reading older than the newest drawn one is put in
	// its place; a repeated time replaces the old point.
	addReading(r, range) {
		if (typeof r.time !== 'number') {
			return;
		}
		const at = this.rows.findIndex((x) => x.time >= r.time);
		if (at === -1) {
			this.rows.push(r);
		} else if (this.rows[at].time === r.time) {
			this.rows[at] = r;
		} else {
			this.rows.splice(at, 0, r);
		}
		this.slide(range);
	}

	// Moves the window to range, dropping the points that fell out of it.
	slide(range) {
		this.range = range;
		const first = this.rows.findIndex((x) => x.time >= range.from);
		this.rows = first === -1 ? [] : this.rows.slice(first);
		this.redraw();
	}

	redraw() {
		const num = (v) => (typeof v === 'number' ? v : null);
		this.plot.setData([
			this.rows.map((r) => r.time / 1000),
			this.rows.map((r) => num(r.temperature)),
			this.rows.map((r) => num(r.humidity)),
		]);
		this.box.dataset.points = String(this.rows.length);
		this.empty.hidden = this.rows.length > 0;
	}

	resize(container) {
		this.plot.setSize({ width: width(container), height: HEIGHT });
	}

	destroy() {
		this.plot.destroy();
		this.box.remove();
	}
}

// Average temperature per device and bucket, one line per device.
export class OverviewChart {
	constructor(container) {
		this.container = container;
		this.plot = null;
		this.range = { from: Date.now() - 3600000, to: Date.now() };
		this.devices = new Set();
		this.empty = el('p', 'muted', 'No readings in this range.');
		container.append(this.empty);
	}

	// buckets: [{device, time, avg, min, max, count}] as the API returns them.
	setBuckets(buckets, range) {
		this.range = range;
		this.devices = new Set(buckets.map((b) => b.device));
		const devices = [...this.devices].sort();
		const times = [...new Set(buckets.map((b) => b.time))].sort((a, b) => a - b);
		const col = new Map(times.map((t, i) => [t, i]));
		const data = [times.map((t) => t / 1000)];
		for (const d of devices) {
			const ys = new Array(times.length).fill(null);
			for (const b of buckets) {
				if (b.device === d && typeof b.avg === 'number') {
					ys[col.get(b.time)] = b.avg;
				}
			}
			data.push(ys);
		}
		if (this.plot) {
			this.plot.destroy();
		}
		this.plot = new uPlot({
			width: width(this.container),
			height: HEIGHT,
			scales: { x: xScale(this), y: {} },
			series: [{}, ...devices.map((d, i) => ({
				label: d, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
				value: unitValue('°C'),
			}))],
			axes: [{}, { label: '°C' }],
		}, data, this.container);
		this.container.dataset.points = String(buckets.length);
		this.empty.hidden = buckets.length > 0;
	}

	// Whether the overview has a line for this device.
	has(device) {
		return this.devices.has(device);
	}

	resize() {
		if (this.plot) {
			this.plot.setSize({ width: width(this.container), height: HEIGHT });
		}
	}
}
