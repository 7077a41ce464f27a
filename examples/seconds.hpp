#pragma once
// Prints seconds the way Python prints a float: the shortest text that reads back.
#include <charconv>
#include <chrono>
#include <string>

inline std::string python_float(double value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    std::string text(buffer, end);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
}

inline std::string seconds_since(std::chrono::steady_clock::time_point start) {
    return python_float(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}
