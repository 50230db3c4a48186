// Runs a fuzz target over files and directories of inputs (its seed corpus):
// the regression half of every fuzz target, in every build, without
// libFuzzer. Exit status 0 if every input ran; a broken property aborts.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "base/io.h"
#include "fuzz.h"

int main(int argc, char** argv)
{
    namespace fs = std::filesystem;
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        fs::path p(argv[i]);
        if (fs::is_directory(p)) {
            for (const auto& e : fs::recursive_directory_iterator(p))
                if (e.is_regular_file())
                    inputs.push_back(e.path());
        } else if (fs::is_regular_file(p)) {
            inputs.push_back(p);
        } else {
            std::cerr << argv[i] << ": no such file or directory\n";
            return 2;
        }
    }
    if (inputs.empty()) {
        std::cerr << "no inputs\n";
        return 2;
    }
    std::sort(inputs.begin(), inputs.end());
    for (const auto& p : inputs) {
        auto bytes = veil::readAll(p.string());
        if (!bytes) {
            std::cerr << bytes.error().message << "\n";
            return 2;
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size());
    }
    std::cout << inputs.size() << " inputs ran\n";
    return 0;
}
