/*
 * `moat ctl`'s human output: one table or a few lines per answer. --json
 * bypasses all of this and prints the server's answer.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/ctl.h"

static const char *str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));

	return s != NULL ? s : "-";
}

static long long num(const cJSON *o, const char *key)
{
	const cJSON *n = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(n) ? (long long)n->valuedouble : 0;
}

/* A Unix time as "2026-12-01 05:30:00Z". */
static const char *when(const cJSON *o, const char *key, char out[32])
{
	time_t t = (time_t)num(o, key);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
	return out;
}

/* "k=v k=v" of the object <attrs>. */
static void print_attrs(const cJSON *attrs)
{
	const cJSON *a;
	const char *sep = "";

	cJSON_ArrayForEach(a, attrs)
	{
		printf("%s%s=%s", sep, a->string, cJSON_GetStringValue(a));
		sep = " ";
	}
}

static void print_note(const cJSON *res)
{
	if (cJSON_IsFalse(cJSON_GetObjectItem(res, "daemon")))
		printf("note: %s\n", str(res, "note"));
}

static void print_thing(const cJSON *t)
{
	const cJSON *c;
	char a[32], b[32];

	printf("name     %s\nstatus   %s\ncreated  %s\nattrs    ", str(t, "name"), str(t, "status"),
	       when(t, "created", a));
	print_attrs(cJSON_GetObjectItem(t, "attrs"));
	printf("\n\n%-34s %-7s %-21s %-21s %s\n", "CERTIFICATE", "PROFILE", "NOT BEFORE",
	       "NOT AFTER", "REVOKED");
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(t, "certs"))
	    printf("%-34s %-7s %-21s %-21s %s\n", str(c, "serial"), str(c, "profile"),
		   when(c, "not_before", a), when(c, "not_after", b),
		   cJSON_GetObjectItem(c, "revoked_at") != NULL ? "yes" : "no");
	printf("\n%-13s %s\n", "KEY", "PUBLIC");
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(t, "keys"))
	    printf("%-13s %s\n", str(c, "kind"), str(c, "public_key"));
}

static void print_policy(const cJSON *p)
{
	const cJSON *sig = cJSON_GetObjectItem(p, "signed");
	long long max_age = num(p, "max_age_s");

	printf("filter     %s\npublish    %s\nsubscribe  %s\nalg        %s\nsigned     %s\n",
	       str(p, "filter"), str(p, "publish"), str(p, "subscribe"),
	       cJSON_GetObjectItem(p, "alg") != NULL ? str(p, "alg") : "chacha20-poly1305",
	       cJSON_IsTrue(sig) ? "yes" : "no");
	if (max_age > 0)
		printf("max_age_s  %lld\n", max_age);
	else
		printf("max_age_s  none\n");
}

void ctl_print(const char *op, const cJSON *res)
{
	const cJSON *e;
	char a[32];

	if (strcmp(op, "thing.list") == 0) {
		printf("%-24s %-8s %s\n", "NAME", "STATUS", "ATTRIBUTES");
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "things"))
		{
			printf("%-24s %-8s ", str(e, "name"), str(e, "status"));
			print_attrs(cJSON_GetObjectItem(e, "attrs"));
			putchar('\n');
		}
	} else if (strcmp(op, "thing.show") == 0 || strcmp(op, "thing.update") == 0) {
		print_thing(cJSON_GetObjectItem(res, "thing"));
	} else if (strcmp(op, "thing.revoke") == 0) {
		printf("%s revoked\n", str(res, "name"));
	} else if (strcmp(op, "policy.list") == 0) {
		printf("%-24s %-18s %-6s %-24s %s\n", "FILTER", "ALG", "SIGNED", "PUBLISH",
		       "SUBSCRIBE");
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "policies")) printf(
		    "%-24s %-18s %-6s %-24s %s\n", str(e, "filter"),
		    cJSON_GetObjectItem(e, "alg") != NULL ? str(e, "alg") : "chacha20-poly1305",
		    cJSON_IsTrue(cJSON_GetObjectItem(e, "signed")) ? "yes" : "no",
		    str(e, "publish"), str(e, "subscribe"));
	} else if (strcmp(op, "policy.show") == 0 || strcmp(op, "policy.set") == 0) {
		print_policy(cJSON_GetObjectItem(res, "policy"));
	} else if (strcmp(op, "policy.delete") == 0) {
		printf("policy deleted\n");
	} else if (strcmp(op, "key.rotate") == 0) {
		printf("%s: new key epoch requested\n", str(res, "filter"));
	} else if (strcmp(op, "token.issue") == 0) {
		printf("%s\n", str(res, "token"));
		fprintf(stderr, "expires %s, jti %s, kid %s\n", when(res, "exp", a),
			str(res, "jti"), str(res, "kid"));
	} else if (strcmp(op, "audit.tail") == 0) {
		printf("%-21s %-16s %-22s %-16s %s\n", "TIME", "ACTOR", "ACTION", "THING",
		       "DETAIL");
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "audit"))
		{
			char *detail = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "detail"));

			printf("%-21s %-16s %-22s %-16s %s\n", when(e, "time", a), str(e, "actor"),
			       str(e, "action"), str(e, "thing"), detail != NULL ? detail : "{}");
			cJSON_free(detail);
		}
	}
	print_note(res);
}
