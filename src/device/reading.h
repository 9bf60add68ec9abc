/*
 * moat-device: the simulated sensor (temperature, humidity) and the JSON
 * the device publishes: readings on moat/<id>/telemetry and command
 * acknowledgements on moat/<id>/status (contract7). Deterministic for a
 * given seed; no I/O.
 */
#ifndef MOAT_DEVICE_READING_H
#define MOAT_DEVICE_READING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sensor {
	uint64_t state; /* splitmix64 */
	double temperature, humidity;
};

/* Seeds <s> from <seed> and the device's index <n>: the same pair gives the same series. */
void sensor_init(struct sensor *s, uint64_t seed, uint64_t n);

/* Advances the random walk one step: temperature stays in 15..30 °C, humidity in 20..80 %. */
void sensor_step(struct sensor *s);

/*
 * Formats the reading {"device","time","seq","temperature","humidity",
 * "relay"} into <out> (<len> bytes). Returns the length, or -1 when it does
 * not fit. <id> is a client id (printable, no quotes: checked by the
 * caller when the bundle is loaded).
 */
int reading_format(char *out, size_t len, const char *id, uint64_t time_ms, uint64_t seq,
		   const struct sensor *s, bool relay_on);

/*
 * Formats a status: {"device","cmd_id","state","ok":true} when <reason> is
 * NULL, else {"device","cmd_id","ok":false,"reason"}; <cmd_id> "" is
 * written as null (the command was unreadable). Returns the length or -1.
 */
int status_format(char *out, size_t len, const char *id, const char *cmd_id, bool relay_on,
		  const char *reason);

#endif
