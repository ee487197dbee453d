// Running programs from tests: a command's exit code and output, or a background command to watch and signal; and
// a check that their output names every expected fragment.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_paths.h"
namespace rt_test {

// Passes when `text` contains every fragment; otherwise shows the text and the first missing fragment.
inline ::testing::AssertionResult contains(const std::string& text, std::initializer_list<std::string> fragments) {
  for (const std::string& f : fragments)
    if (text.find(f) == std::string::npos) return ::testing::AssertionFailure() << "lacks '" << f << "' in:\n" << text;
  return ::testing::AssertionSuccess();
}

struct Outcome {
  int code = -1;       // exit code; -1 when the command ended by a signal
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh and waits for it.
inline Outcome run_command(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  Outcome o;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return o;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) o.output.append(buf.data(), n);
  int status = pclose(pipe);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

// `command` run by /bin/sh in the background (exec'd, so pid() is the command's own process), its stdout and
// stderr going to `output_path`. The destructor kills it if it is still running.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::string& command, const std::string& output_path) : output_path_(output_path) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);  // its own process group, so the destructor can kill what it started
      const std::string line = "exec " + command + " > '" + output_path + "' 2>&1";
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundCommand() {
    if (pid_ > 0 && !done_) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  std::string output() const {
    std::ifstream in(output_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Waits until the output contains `text`; false after timeout_s or when the command ended first.
  bool wait_for_output(const std::string& text, double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      if (output().find(text) != std::string::npos) return true;
      if (!done_ && waitpid(pid_, &status_, WNOHANG) == pid_) done_ = true;
      if (done_) return output().find(text) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // The exit code; -1 when it ended by a signal, -2 when still running after timeout_s (the destructor kills it).
  int wait(double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!done_ && std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_)
        done_ = true;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!done_) return -2;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  // The processes whose parent is this command (the ranks, when it is mpirun).
  std::vector<pid_t> children() const {
    std::vector<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const size_t close = text.rfind(')');  // after "pid (comm)": state, ppid, ...
      if (close == std::string::npos) continue;
      std::istringstream rest(text.substr(close + 1));
      std::string state;
      long ppid = 0;
      rest >> state >> ppid;
      if (ppid == pid_) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  }

 private:
  std::string output_path_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool done_ = false;
};

}  // namespace rt_test
