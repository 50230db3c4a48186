// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized
// inside std::function as Catch's std::regex is inlined (GCC bug 105562);
// the warning is silenced for this translation unit only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
