// The live stream: GET /api/events as Server-Sent Events (reading, device,
// command, alert), each event's data one JSON object. The browser's
// EventSource reconnects by itself; this module reports the connection's
// state and drops events whose data is not JSON.

const KINDS = ['reading', 'device', 'command', 'alert'];

// Opens the stream. handlers: {reading, device, command, alert}(obj) and
// state(s) with s one of 'live', 'reconnecting', 'closed'. Returns a
// function that closes the stream.
export function openEvents(handlers) {
	const source = new EventSource('/api/events');
	for (const kind of KINDS) {
		source.addEventListener(kind, (ev) => {
			let obj;
			try {
				obj = JSON.parse(ev.data);
			} catch {
				return;
			}
			if (obj && typeof obj === 'object') {
				handlers[kind](obj);
			}
		});
	}
	source.addEventListener('open', () => handlers.state('live'));
	source.addEventListener('error', () => {
		handlers.state(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
	});
	return () => source.close();
}
