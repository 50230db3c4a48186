// veil.yaml parsing on any text: never crashes (yaml-cpp's exceptions stay in
// the config module) and every error names the file it is about.
#include "config/config.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string text(reinterpret_cast<const char*>(data), size);
    auto c = veil::config::parse(text, "fuzz.yaml");
    if (!c)
        VEIL_FUZZ_CHECK(!c.error().message.empty());
    return 0;
}
