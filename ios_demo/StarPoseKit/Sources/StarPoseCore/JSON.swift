import Foundation

/// A strict RFC 8259 JSON reader, the same as the Android core's (`Json.kt`).
///
/// Numbers are parsed with `Double(String)`, which rounds correctly, so values written by
/// Python's `json` round-trip exactly (Foundation's `JSONSerialization` may hand back
/// `NSDecimalNumber`s whose `doubleValue` is not the nearest double). Errors name the source,
/// line and column.
public indirect enum JSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// Parse a whole document; `source` (a file name) prefixes every error message.
    public static func parse(_ text: String, source: String = "<text>") throws -> JSON {
        var parser = JSONParser(bytes: Array(text.utf8), source: source)
        return try parser.document()
    }
}

public struct JSONError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

private struct JSONParser {
    let bytes: [UInt8]
    let source: String
    var i = 0
    var depth = 0

    init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    mutating func document() throws -> JSON {
        skipWhitespace()
        let v = try value()
        skipWhitespace()
        if i != bytes.count { throw fail("unexpected content after the document") }
        return v
    }

    func fail(_ message: String) -> JSONError {
        var line = 1
        var column = 1
        for k in 0..<min(i, bytes.count) {
            if bytes[k] == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return JSONError(message: "\(source): invalid JSON at line \(line), column \(column): \(message)")
    }

    mutating func skipWhitespace() {
        while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
    }

    mutating func value() throws -> JSON {
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            depth += 1
            if depth > 512 { throw fail("nesting deeper than 512") }
            defer { depth -= 1 }
            return try object()
        case UInt8(ascii: "["):
            depth += 1
            if depth > 512 { throw fail("nesting deeper than 512") }
            defer { depth -= 1 }
            return try array()
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw fail("unexpected character '\(Character(UnicodeScalar(bytes[i])))'")
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("expected '\(word)'") }
        i += w.count
    }

    mutating func object() throws -> JSON {
        var out: [String: JSON] = [:]
        i += 1
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(out)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try string()
            if out[key] != nil { throw fail("duplicate key \"\(key)\"") }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            i += 1
            skipWhitespace()
            out[key] = try value()
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(out)
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }

    mutating func array() throws -> JSON {
        var out: [JSON] = []
        i += 1
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(out)
        }
        while true {
            skipWhitespace()
            out.append(try value())
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(out)
            } else {
                throw fail("expected ',' or ']'")
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let text = String(bytes: bytes[i..<(i + 4)], encoding: .ascii),
              let code = UInt32(text, radix: 16) else { throw fail("bad \\u escape") }
        i += 4
        return code
    }

    mutating func string() throws -> String {
        var out: [UInt8] = []
        i += 1
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            i += 1
            if c == UInt8(ascii: "\"") {
                return String(decoding: out, as: UTF8.self)
            } else if c == UInt8(ascii: "\\") {
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code), i + 6 <= bytes.count,
                       bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low &- 0xDC00)
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw fail("bad escape '\\\(Character(UnicodeScalar(e)))'")
                }
            } else if c < 0x20 {
                throw fail("control character in a string")
            } else {
                out.append(c)
            }
        }
    }

    mutating func number() throws -> Double {
        let start = i
        func digit(_ k: Int) -> Bool { k < bytes.count && bytes[k] >= UInt8(ascii: "0") && bytes[k] <= UInt8(ascii: "9") }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw fail("bad number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else if digit(i) {
            while digit(i) { i += 1 }
        } else {
            throw fail("bad number")
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digit(i) else { throw fail("bad number: digits must follow '.'") }
            while digit(i) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digit(i) else { throw fail("bad number: digits must follow the exponent") }
            while digit(i) { i += 1 }
        }
        guard let text = String(bytes: bytes[start..<i], encoding: .ascii), let v = Double(text) else {
            throw fail("bad number")
        }
        return v
    }
}

/// A field of a metadata document that cannot drive the app; the message names file and path.
public struct MetadataError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Typed, path-aware access to a parsed JSON tree (`JsonNode` in the Kotlin core), so that a
/// wrong field reports where it is: `model.json: 'input.width' must be a number, got "192"`.
public struct JSONNode {
    public let value: JSON
    public let path: String
    public let source: String

    public init(_ value: JSON, path: String = "", source: String) {
        self.value = value
        self.path = path
        self.source = source
    }

    public static func parse(_ text: String, source: String) throws -> JSONNode {
        JSONNode(try JSON.parse(text, source: source), source: source)
    }

    public func fail(_ message: String) -> MetadataError {
        MetadataError("\(source): '\(path.isEmpty ? "$" : path)' \(message)")
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public var isNull: Bool { value == .null }

    public func object() throws -> [String: JSON] {
        guard case let .object(o) = value else { throw fail("must be an object") }
        return o
    }

    public func has(_ key: String) throws -> Bool { try object()[key] != nil }

    public subscript(_ key: String) -> JSONNode {
        get throws {
            guard let v = try object()[key] else { throw JSONNode(.null, path: child(key), source: source).fail("is missing") }
            return JSONNode(v, path: child(key), source: source)
        }
    }

    public func opt(_ key: String) throws -> JSONNode? {
        guard let v = try object()[key] else { return nil }
        return JSONNode(v, path: child(key), source: source)
    }

    public func list() throws -> [JSONNode] {
        guard case let .array(a) = value else { throw fail("must be an array") }
        return a.enumerated().map { JSONNode($0.element, path: "\(path)[\($0.offset)]", source: source) }
    }

    public func string() throws -> String {
        guard case let .string(s) = value else { throw fail("must be a string, got \(describe())") }
        return s
    }

    public func double() throws -> Double {
        guard case let .number(d) = value else { throw fail("must be a number, got \(describe())") }
        return d
    }

    public func int() throws -> Int {
        let d = try double()
        guard d == d.rounded(), abs(d) < 2_147_483_648 else { throw fail("must be an integer, got \(d)") }
        return Int(d)
    }

    public func bool() throws -> Bool {
        guard case let .bool(b) = value else { throw fail("must be true or false, got \(describe())") }
        return b
    }

    public func doubles() throws -> [Double] { try list().map { try $0.double() } }

    public func floats() throws -> [Float] { try list().map { Float(try $0.double()) } }

    public func ints() throws -> [Int] { try list().map { try $0.int() } }

    public func strings() throws -> [String] { try list().map { try $0.string() } }

    private func describe() -> String {
        switch value {
        case .null: return "null"
        case let .string(s): return "\"\(s)\""
        case .object: return "an object"
        case .array: return "an array"
        case let .bool(b): return String(b)
        case let .number(d): return String(d)
        }
    }
}
