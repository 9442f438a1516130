// npy.hpp: a small reader of numpy's .npy files, for the examples.
//
// What numpy.save() writes for a plain array is supported; everything else
// is refused with a message, never misread:
//
//   magic      "\x93NUMPY", then format version 1.0, 2.0 or 3.0
//   header     length: 2 bytes (1.0) or 4 bytes (2.0, 3.0), little-endian;
//              then a Python dict literal (ASCII; UTF-8 in 3.0) with
//              exactly the keys 'descr', 'fortran_order' and 'shape'
//   descr      '<f4' '<f8' '<i4' '<i8' '|i1' '|u1' '|b1' (also '<i1',
//              '<u1', '|b1' spelt '?'): little-endian plain dtypes only, so
//              no big-endian ('>'), no float16, no strings, records or
//              objects (pickles are never read)
//   fortran_order  False only (C order, what numpy writes for C arrays)
//   shape      a tuple of up to 8 non-negative ints: () is a scalar
//   data       exactly elements x itemsize bytes after the header; a
//              shorter file is an error, trailing bytes are an error too
//
// numpy.savez (.npz, a zip of .npy files) and pickled objects are not
// supported. Throws std::runtime_error naming the file and the fault.
#ifndef KILN_EXAMPLES_NPY_HPP
#define KILN_EXAMPLES_NPY_HPP

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln.hpp"

namespace npy
{

struct array {
    kiln::dtype type;
    kiln::shape_t shape;
    std::vector<unsigned char> bytes; // row-major, little-endian, as on the wire

    int64_t size() const { return kiln::elements(shape); }
    template <class T> kiln::span<const T> view() const
    {
        if (kiln::dtype_v<T> != type)
            throw std::runtime_error(std::string("npy: array holds ") + kiln::dtype_name(type) +
                                     ", not " + kiln::dtype_name(kiln::dtype_v<T>));
        return kiln::span<const T>(reinterpret_cast<const T *>(bytes.data()),
                                   bytes.size() / sizeof(T));
    }
};

namespace detail
{

[[noreturn]] inline void bad(const std::string &path, const std::string &why)
{
    throw std::runtime_error("npy: " + path + ": " + why);
}

inline void skip_space(const std::string &h, size_t &i)
{
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == '\n'))
        i++;
}

// A quoted string: 'x' or "x", no escapes (numpy writes none in these keys).
inline std::string quoted(const std::string &path, const std::string &h, size_t &i)
{
    skip_space(h, i);
    if (i >= h.size() || (h[i] != '\'' && h[i] != '"'))
        bad(path, "header: expected a quoted string at byte " + std::to_string(i));
    char q = h[i++];
    size_t end = h.find(q, i);
    if (end == std::string::npos)
        bad(path, "header: unterminated string");
    std::string s = h.substr(i, end - i);
    i = end + 1;
    return s;
}

inline void expect(const std::string &path, const std::string &h, size_t &i, char c)
{
    skip_space(h, i);
    if (i >= h.size() || h[i] != c)
        bad(path, std::string("header: expected '") + c + "' at byte " + std::to_string(i));
    i++;
}

inline bool accept(const std::string &h, size_t &i, char c)
{
    skip_space(h, i);
    if (i < h.size() && h[i] == c) {
        i++;
        return true;
    }
    return false;
}

inline kiln::dtype parse_descr(const std::string &path, const std::string &d)
{
    static const struct {
        const char *descr;
        kiln::dtype type;
    } table[] = {
        {"<f4", kiln::dtype::float32}, {"<f8", kiln::dtype::float64}, {"<i4", kiln::dtype::int32},
        {"<i8", kiln::dtype::int64},   {"|i1", kiln::dtype::int8},    {"<i1", kiln::dtype::int8},
        {"|u1", kiln::dtype::uint8},   {"<u1", kiln::dtype::uint8},   {"|b1", kiln::dtype::bool_},
        {"?", kiln::dtype::bool_},
    };
    for (const auto &t : table)
        if (d == t.descr)
            return t.type;
    bad(path, "dtype '" + d +
                  "' is not supported (little-endian bool, int8, uint8, int32, "
                  "int64, float32 and float64 are)");
}

} // namespace detail

// Read one .npy file.
inline array load(const std::string &path)
{
    using namespace detail;
    std::ifstream f(path, std::ios::binary);
    if (!f)
        bad(path, "cannot open: " + std::string(std::strerror(errno)));
    std::vector<unsigned char> file((std::istreambuf_iterator<char>(f)),
                                    std::istreambuf_iterator<char>());
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (file.size() < 10 || std::memcmp(file.data(), magic, 6) != 0)
        bad(path, "not a .npy file (no \\x93NUMPY magic)");
    unsigned major = file[6];
    if (major < 1 || major > 3 || file[7] != 0)
        bad(path, "format version " + std::to_string(major) + "." + std::to_string(file[7]) +
                      " is not 1.0, 2.0 or 3.0");
    size_t at = major == 1 ? 10 : 12;
    if (file.size() < at)
        bad(path, "truncated header");
    size_t hlen = file[8] | (size_t) file[9] << 8;
    if (major > 1)
        hlen |= (size_t) file[10] << 16 | (size_t) file[11] << 24;
    if (hlen > file.size() - at)
        bad(path, "header of " + std::to_string(hlen) + " bytes runs past the end of the file");
    std::string h(reinterpret_cast<const char *>(file.data() + at), hlen);
    at += hlen;

    array a{};
    bool have_descr = false, have_order = false, have_shape = false;
    size_t i = 0;
    expect(path, h, i, '{');
    while (!accept(h, i, '}')) {
        std::string key = quoted(path, h, i);
        expect(path, h, i, ':');
        skip_space(h, i);
        if (key == "descr" && !have_descr) {
            a.type = parse_descr(path, quoted(path, h, i));
            have_descr = true;
        } else if (key == "fortran_order" && !have_order) {
            if (h.compare(i, 5, "False") == 0)
                i += 5;
            else if (h.compare(i, 4, "True") == 0)
                bad(path, "fortran_order True is not supported (save a C-ordered array)");
            else
                bad(path, "header: fortran_order is neither True nor False");
            have_order = true;
        } else if (key == "shape" && !have_shape) {
            expect(path, h, i, '(');
            while (!accept(h, i, ')')) {
                skip_space(h, i);
                size_t end = i;
                while (end < h.size() && h[end] >= '0' && h[end] <= '9')
                    end++;
                if (end == i || end - i > 15)
                    bad(path, "header: a shape entry is not a size at byte " + std::to_string(i));
                a.shape.push_back(std::stoll(h.substr(i, end - i)));
                i = end;
                if (a.shape.size() > KILN_MAX_RANK)
                    bad(path, "more than " + std::to_string(KILN_MAX_RANK) + " dimensions");
                if (!accept(h, i, ',')) {
                    expect(path, h, i, ')');
                    break;
                }
            }
            have_shape = true;
        } else {
            bad(path, "header: unexpected or repeated key '" + key + "'");
        }
        if (!accept(h, i, ',')) {
            expect(path, h, i, '}');
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        bad(path, "header lacks descr, fortran_order or shape");

    size_t want = kiln::dtype_size(a.type);
    for (int64_t d : a.shape)
        if (__builtin_mul_overflow(want, static_cast<size_t>(d), &want))
            bad(path, "the shape's size overflows");
    if (file.size() - at != want)
        bad(path, "the data holds " + std::to_string(file.size() - at) +
                      " bytes, the shape needs " + std::to_string(want));
    a.bytes.assign(file.begin() + static_cast<std::ptrdiff_t>(at), file.end());
    return a;
}

} // namespace npy

#endif
