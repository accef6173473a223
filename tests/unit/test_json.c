/* The JSON reader: values, escapes, exact u64, and the documents it must refuse. */
#include "check.h"
#include "core/error.h"
#include "core/json.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static cap_json *P(const char *s) { return cap_json_parse(s, strlen(s)); }

static int refused(const char *s, const char *why)
{
	cap_json *j = P(s);
	if (j) { cap_json_free(j); return 0; }
	return strstr(cap_errmsg(), why) != NULL;
}

int main(void)
{
	cap_json *j = P("{\"a\": [1, -2.5e1, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\", "
	                "\"big\": 18446744073709551615, \"f\": 0.1}");
	CHECK(j && j->type == CAP_JSON_OBJECT && j->n == 4, "object parsed");
	const cap_json *a = cap_json_get(j, "a");
	CHECK(a && a->n == 5 && a->items[0]->is_uint && a->items[0]->uint == 1 && a->items[1]->number == -25.0 &&
	      !a->items[1]->is_uint && a->items[2]->boolean == 1 && a->items[4]->type == CAP_JSON_NULL, "array values");
	CHECK(strcmp(cap_json_get_str(j, "s"), "x\xc3\xa9\xf0\x9f\x98\x80\n\"") == 0, "escapes and surrogate pair to UTF-8");
	const cap_json *big = cap_json_get(j, "big");
	CHECK(big && big->is_uint && big->uint == UINT64_MAX, "u64 max kept exactly");
	CHECK(cap_json_get(j, "f")->number == 0.1, "0.1 parsed as the nearest double");
	CHECK(cap_json_get(j, "nope") == NULL && cap_json_get_str(j, "a") == NULL, "absent and mistyped keys");
	cap_json_free(j);

	j = P("18446744073709551616");
	CHECK(j && !j->is_uint, "u64 overflow is a double, not a wrapped integer");
	cap_json_free(j);

	CHECK(refused("[1,2,]", "unexpected"), "trailing comma: %s", cap_errmsg());
	CHECK(refused("{\"a\":1,}", "expected a string key"), "trailing comma in object: %s", cap_errmsg());
	CHECK(refused("\"a\tb\"", "control character"), "raw tab in string: %s", cap_errmsg());
	CHECK(refused("\"\xff\"", "invalid UTF-8"), "invalid UTF-8: %s", cap_errmsg());
	CHECK(refused("\"\xed\xa0\x80\"", "invalid UTF-8"), "encoded surrogate: %s", cap_errmsg());
	CHECK(refused("\"\xc0\xaf\"", "invalid UTF-8"), "overlong encoding: %s", cap_errmsg());
	CHECK(refused("\"\\ud800x\"", "surrogate"), "lone high surrogate: %s", cap_errmsg());
	CHECK(refused("\"\\udc00\"", "surrogate"), "lone low surrogate: %s", cap_errmsg());
	CHECK(refused("{\"a\":1,\"a\":2}", "duplicate key"), "duplicate key: %s", cap_errmsg());
	CHECK(refused("{} x", "trailing"), "trailing text: %s", cap_errmsg());
	CHECK(refused("", "end of input"), "empty: %s", cap_errmsg());
	CHECK(refused("01", "trailing"), "leading zero: %s", cap_errmsg());
	CHECK(refused("[1.]", "bad number"), "bad fraction: %s", cap_errmsg());
	CHECK(refused("\"abc", "unterminated"), "unterminated string: %s", cap_errmsg());
	CHECK(refused("{\"a\"\n:\n tru}", "line 3, column 2"), "error names line and column: %s", cap_errmsg());

	/* Deep nesting is refused, not a stack overflow. */
	char *deep = malloc(200001);
	memset(deep, '[', 200000);
	deep[200000] = 0;
	CHECK(refused(deep, "too deep"), "nesting 200000 deep refused");
	free(deep);

	/* Duplicates in a big object (sorted check path). */
	cap_buf b = { 0 };
	cap_buf_adds(&b, "{");
	for (int i = 0; i < 3000; i++) cap_buf_printf(&b, "%s\"w%d\":%d", i ? "," : "", i % 2999, i);
	cap_buf_adds(&b, "}");
	CHECK(refused(b.data, "duplicate key \"w0\""), "duplicate in a 3000-key object: %s", cap_errmsg());
	cap_buf_reset(&b);
	cap_buf_adds(&b, "{");
	for (int i = 0; i < 3000; i++) cap_buf_printf(&b, "%s\"w%d\":%d", i ? "," : "", i, i);
	cap_buf_adds(&b, "}");
	j = P(b.data);
	CHECK(j && j->n == 3000 && cap_json_get(j, "w2999")->uint == 2999, "3000-key object");
	cap_json_free(j);

	/* cap_buf's JSON writer round-trips through the reader. */
	cap_buf_reset(&b);
	const char weird[] = "q\"\\\n\x01\xc3\xa9/";
	cap_buf_json_string(&b, weird, sizeof weird - 1);
	j = P(b.data);
	CHECK(j && j->type == CAP_JSON_STRING && j->len == sizeof weird - 1 && memcmp(j->str, weird, j->len) == 0,
	      "written string reads back: %s", b.data);
	cap_json_free(j);
	cap_buf_reset(&b);
	cap_buf_json_float(&b, 0.1f);
	CHECK((float)strtod(b.data, NULL) == 0.1f, "float written shortest and exact: %s", b.data);
	cap_buf_free(&b);
	return check_exit();
}
