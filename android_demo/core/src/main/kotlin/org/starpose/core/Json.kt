package org.starpose.core

/**
 * A strict RFC 8259 JSON reader using only the Kotlin standard library.
 *
 * The core must run on the plain JVM (tests) and on Android without org.json, so it carries its
 * own ~150-line parser. Objects become [LinkedHashMap] (key order kept), arrays [List], numbers
 * [Double] (JSON written by Python's `json` round-trips exactly), plus String, Boolean and null.
 * Errors name the source, line and column.
 */
class JsonException(message: String) : IllegalArgumentException(message)

object Json {
    /** Parse a whole document; [source] (a file name) prefixes every error message. */
    fun parse(text: String, source: String = "<text>"): Any? = JsonParser(text, source).document()
}

private class JsonParser(private val s: String, private val source: String) {
    private var i = 0
    private var depth = 0

    fun document(): Any? {
        skipWhitespace()
        val v = value()
        skipWhitespace()
        if (i != s.length) fail("unexpected content after the document")
        return v
    }

    private fun fail(message: String): Nothing {
        var line = 1
        var col = 1
        for (k in 0 until minOf(i, s.length)) {
            if (s[k] == '\n') {
                line++
                col = 1
            } else {
                col++
            }
        }
        throw JsonException("$source: invalid JSON at line $line, column $col: $message")
    }

    private fun skipWhitespace() {
        while (i < s.length && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++
    }

    private fun value(): Any? {
        if (i >= s.length) fail("unexpected end of input")
        return when (val c = s[i]) {
            '{' -> nested { obj() }
            '[' -> nested { array() }
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c in '0'..'9') number() else fail("unexpected character '$c'")
        }
    }

    private inline fun <T> nested(block: () -> T): T {
        if (++depth > 512) fail("nesting deeper than 512")
        val v = block()
        depth--
        return v
    }

    private fun literal(word: String, v: Any?): Any? {
        if (!s.startsWith(word, i)) fail("expected '$word'")
        i += word.length
        return v
    }

    private fun obj(): Map<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        i++ // {
        skipWhitespace()
        if (i < s.length && s[i] == '}') {
            i++
            return out
        }
        while (true) {
            skipWhitespace()
            if (i >= s.length || s[i] != '"') fail("expected a string key")
            val key = string()
            if (out.containsKey(key)) fail("duplicate key \"$key\"")
            skipWhitespace()
            if (i >= s.length || s[i] != ':') fail("expected ':' after key \"$key\"")
            i++
            skipWhitespace()
            out[key] = value()
            skipWhitespace()
            if (i >= s.length) fail("unexpected end of input in an object")
            when (s[i]) {
                ',' -> i++
                '}' -> {
                    i++
                    return out
                }
                else -> fail("expected ',' or '}'")
            }
        }
    }

    private fun array(): List<Any?> {
        val out = ArrayList<Any?>()
        i++ // [
        skipWhitespace()
        if (i < s.length && s[i] == ']') {
            i++
            return out
        }
        while (true) {
            skipWhitespace()
            out.add(value())
            skipWhitespace()
            if (i >= s.length) fail("unexpected end of input in an array")
            when (s[i]) {
                ',' -> i++
                ']' -> {
                    i++
                    return out
                }
                else -> fail("expected ',' or ']'")
            }
        }
    }

    private fun string(): String {
        val sb = StringBuilder()
        i++ // opening quote
        while (true) {
            if (i >= s.length) fail("unterminated string")
            val c = s[i++]
            when {
                c == '"' -> return sb.toString()
                c == '\\' -> {
                    if (i >= s.length) fail("unterminated escape")
                    when (val e = s[i++]) {
                        '"' -> sb.append('"')
                        '\\' -> sb.append('\\')
                        '/' -> sb.append('/')
                        'b' -> sb.append('\b')
                        'f' -> sb.append('\u000C')
                        'n' -> sb.append('\n')
                        'r' -> sb.append('\r')
                        't' -> sb.append('\t')
                        'u' -> {
                            if (i + 4 > s.length) fail("short \\u escape")
                            val code = s.substring(i, i + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                            sb.append(code.toChar())
                            i += 4
                        }
                        else -> fail("bad escape '\\$e'")
                    }
                }
                c < ' ' -> fail("control character in a string")
                else -> sb.append(c)
            }
        }
    }

    private fun number(): Double {
        val start = i
        if (s[i] == '-') i++
        if (i >= s.length) fail("bad number")
        if (s[i] == '0') {
            i++
        } else if (s[i] in '1'..'9') {
            while (i < s.length && s[i] in '0'..'9') i++
        } else {
            fail("bad number")
        }
        if (i < s.length && s[i] == '.') {
            i++
            if (i >= s.length || s[i] !in '0'..'9') fail("bad number: digits must follow '.'")
            while (i < s.length && s[i] in '0'..'9') i++
        }
        if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
            i++
            if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
            if (i >= s.length || s[i] !in '0'..'9') fail("bad number: digits must follow the exponent")
            while (i < s.length && s[i] in '0'..'9') i++
        }
        return s.substring(start, i).toDouble()
    }
}

/**
 * Typed, path-aware access to a parsed JSON tree, so that a wrong field reports where it is:
 * `model.json: 'input.width' must be a number, got "192"`.
 */
class JsonNode(val value: Any?, val path: String, val source: String) {
    fun fail(message: String): Nothing = throw MetadataException("$source: '${path.ifEmpty { "$" }}' $message")

    private fun child(key: String) = if (path.isEmpty()) key else "$path.$key"

    val isNull: Boolean get() = value == null

    fun obj(): Map<String, Any?> {
        @Suppress("UNCHECKED_CAST")
        return value as? Map<String, Any?> ?: fail("must be an object")
    }

    fun has(key: String): Boolean = obj().containsKey(key)

    operator fun get(key: String): JsonNode {
        val o = obj()
        if (!o.containsKey(key)) JsonNode(null, child(key), source).fail("is missing")
        return JsonNode(o[key], child(key), source)
    }

    fun opt(key: String): JsonNode? = obj().let { if (it.containsKey(key)) JsonNode(it[key], child(key), source) else null }

    fun list(): List<JsonNode> {
        val l = value as? List<*> ?: fail("must be an array")
        return l.mapIndexed { k, v -> JsonNode(v, "$path[$k]", source) }
    }

    fun string(): String = value as? String ?: fail("must be a string, got ${describe()}")

    fun double(): Double = (value as? Double) ?: fail("must be a number, got ${describe()}")

    fun int(): Int {
        val d = double()
        if (d != Math.rint(d) || d > Int.MAX_VALUE || d < Int.MIN_VALUE) fail("must be an integer, got $d")
        return d.toInt()
    }

    fun bool(): Boolean = value as? Boolean ?: fail("must be true or false, got ${describe()}")

    fun doubles(): DoubleArray = list().map { it.double() }.toDoubleArray()

    fun floats(): FloatArray = list().map { it.double().toFloat() }.toFloatArray()

    fun ints(): IntArray = list().map { it.int() }.toIntArray()

    fun strings(): List<String> = list().map { it.string() }

    private fun describe(): String = when (value) {
        null -> "null"
        is String -> "\"$value\""
        is Map<*, *> -> "an object"
        is List<*> -> "an array"
        else -> value.toString()
    }

    companion object {
        fun parse(text: String, source: String): JsonNode = JsonNode(Json.parse(text, source), "", source)
    }
}
