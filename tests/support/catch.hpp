#pragma once
// Catch2 2.x (Debian's) or 3.x, whichever the build found.
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#include <catch2/catch_translate_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <aio/errors.hpp>

// A cancellation or Ctrl-C that escapes a test is not a std::exception: show its what().
CATCH_TRANSLATE_EXCEPTION(const aio::base_exception& e) { return e.what(); }
