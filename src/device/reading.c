/*
 * moat-device: the simulated sensor and the JSON of readings and statuses
 * (reading.h).
 */
#include "device/reading.h"

#include <stdio.h>

static uint64_t next_u64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform double in [-1, 1). */
static double unit(uint64_t *x)
{
	return (double)(next_u64(x) >> 11) / 4503599627370496.0 - 1.0;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void sensor_init(struct sensor *s, uint64_t seed, uint64_t n)
{
	s->state = seed ^ (n * 0xd1b54a32d192ed03ULL);
	s->temperature = 21.0 + 2.0 * unit(&s->state);
	s->humidity = 45.0 + 10.0 * unit(&s->state);
}

void sensor_step(struct sensor *s)
{
	s->temperature = clamp(s->temperature + 0.3 * unit(&s->state), 15.0, 30.0);
	s->humidity = clamp(s->humidity + 0.8 * unit(&s->state), 20.0, 80.0);
}

static int fitted(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -1 : n;
}

int reading_format(char *out, size_t len, const char *id, uint64_t time_ms, uint64_t seq,
		   const struct sensor *s, bool relay_on)
{
	return fitted(snprintf(out, len,
			       "{\"device\":\"%s\",\"time\":%llu,\"seq\":%llu,\"temperature\":%.1f,"
			       "\"humidity\":%.1f,\"relay\":\"%s\"}",
			       id, (unsigned long long)time_ms, (unsigned long long)seq,
			       s->temperature, s->humidity, relay_on ? "on" : "off"),
		      len);
}

int status_format(char *out, size_t len, const char *id, const char *cmd_id, bool relay_on,
		  const char *reason)
{
	char quoted[64];

	if (cmd_id[0] == '\0')
		snprintf(quoted, sizeof(quoted), "null");
	else
		snprintf(quoted, sizeof(quoted), "\"%.32s\"", cmd_id);
	if (reason == NULL)
		return fitted(
		    snprintf(out, len,
			     "{\"device\":\"%s\",\"cmd_id\":%s,\"state\":\"%s\",\"ok\":true}", id,
			     quoted, relay_on ? "on" : "off"),
		    len);
	return fitted(snprintf(out, len,
			       "{\"device\":\"%s\",\"cmd_id\":%s,\"ok\":false,\"reason\":\"%s\"}",
			       id, quoted, reason),
		      len);
}
