#pragma once

// Errors are values on the data path (STYLE.md habit 4): a Result holds either
// the value or the error, never both. C++23's std::expected is not in g++ 12.

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace veil {

// The default error: a sentence for a person. Never holds an original
// (unmasked) value — callers name rules, offsets and sizes, not content.
struct Error {
    std::string message;
};

template <typename E>
struct Unexpected {
    E error;
};

template <typename E>
Unexpected<std::decay_t<E>> fail(E&& e)
{
    return {std::forward<E>(e)};
}

inline Unexpected<Error> fail(std::string message)
{
    return {Error{std::move(message)}};
}

template <typename T, typename E = Error>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    // Braces, not parentheses: aggregate errors (Error{"..."}) from a
    // different type need C++20 parenthesized aggregate init, which clang
    // (the fuzz build) has only from version 16.
    template <typename G>
    Result(Unexpected<G> e) : v_(std::in_place_index<1>, E{std::move(e.error)})
    {
    }

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    E& error() & { return std::get<1>(v_); }
    const E& error() const& { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

// Result<void>: success carries nothing.
struct Ok {};

template <typename E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    Result(Ok) {}
    template <typename G>
    Result(Unexpected<G> e) : error_(E{std::move(e.error)}), ok_(false)
    {
    }
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const E& error() const { return error_; }

private:
    E error_{};
    bool ok_ = true;
};

} // namespace veil
