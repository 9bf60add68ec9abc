// The dashboard's client of moat-historian's HTTP API (docs/historian.md):
// JSON in and out, the session cookie sent by the browser, and the CSRF
// token from login (or /api/me) kept in memory only and sent as
// X-CSRF-Token on every POST. Errors become ApiError with a message fit to
// show to the user.

let csrf = null;

// An API call that failed: status is the HTTP status (0 when the historian
// could not be reached), message says what went wrong in words.
export class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
	}
}

function describe(status, body) {
	const detail = body && typeof body.error === 'string' ? body.error : '';
	switch (status) {
	case 400:
		return `the historian refused the request: ${detail || 'bad parameters'}`;
	case 401:
		return detail || 'not logged in, or the session has expired: log in again';
	case 403:
		return detail || 'the request was refused (CSRF token missing or wrong): reload the page';
	case 404:
		return detail || 'not found';
	default:
		return `the historian answered ${status}${detail ? ': ' + detail : ''}`;
	}
}

async function call(method, path, body) {
	const headers = { Accept: 'application/json' };
	const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
	if (method !== 'GET') {
		if (csrf) {
			headers['X-CSRF-Token'] = csrf;
		}
		if (body !== undefined) {
			headers['Content-Type'] = 'application/json';
			init.body = JSON.stringify(body);
		}
	}
	let res;
	try {
		res = await fetch(path, init);
	} catch (err) {
		throw new ApiError(0, `the historian cannot be reached (${err.message})`);
	}
	let data = null;
	const type = res.headers.get('Content-Type') || '';
	if (type.includes('application/json')) {
		try {
			data = await res.json();
		} catch {
			throw new ApiError(res.status, 'the historian sent malformed JSON');
		}
	}
	if (!res.ok) {
		throw new ApiError(res.status, describe(res.status, data));
	}
	if (data === null && method === 'GET') {
		throw new ApiError(res.status, 'the historian sent no JSON');
	}
	return data;
}

function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) {
		if (v !== undefined && v !== null) {
			q.set(k, String(v));
		}
	}
	const s = q.toString();
	return s ? `?${s}` : '';
}

// Logs in; on success keeps the CSRF token and returns {user, csrf}.
export async function login(user, password) {
	const me = await call('POST', '/api/login', { user, password });
	csrf = me.csrf;
	return me;
}

// Returns the current session's {user, csrf} (keeping the token), or null
// when there is no valid session.
export async function me() {
	try {
		const m = await call('GET', '/api/me');
		csrf = m.csrf;
		return m;
	} catch (err) {
		if (err.status === 401) {
			return null;
		}
		throw err;
	}
}

// Ends the session; forgets the token even if the historian cannot be reached.
export async function logout() {
	try {
		await call('POST', '/api/logout');
	} finally {
		csrf = null;
	}
}

export async function devices() {
	return (await call('GET', '/api/devices')).devices;
}

// Readings of one device in [from, to] (Unix ms), newest first.
export async function readings(id, from, to, limit) {
	const path = `/api/devices/${encodeURIComponent(id)}/readings${query({ from, to, limit })}`;
	return (await call('GET', path)).readings;
}

export async function overview(from, to, buckets) {
	return (await call('GET', `/api/overview${query({ from, to, buckets })}`)).buckets;
}

// Sends ON/OFF to a device; resolves to {id, state, status, reason?}.
export async function command(id, state) {
	return call('POST', `/api/devices/${encodeURIComponent(id)}/command`, { state });
}

export async function alerts(limit) {
	return (await call('GET', `/api/alerts${query({ limit })}`)).alerts;
}
