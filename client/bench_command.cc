#include <iostream>

#include "client/commands.h"

namespace audiotag {

int RunBenchCommand(const std::vector<std::string>& args) {
  std::cerr << "audiotag bench: not available in this build yet\n";
  return 2;
}

}  // namespace audiotag
