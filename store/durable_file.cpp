#include "store/durable_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

namespace rill {

namespace fs = std::filesystem;

namespace {

Status Fsync(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError(fmt::format("fsync {} failed: {}", path, std::strerror(err)));
  return Status::OK();
}

std::string Parent(const std::string& path) {
  std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

Status SyncFile(const std::string& path) { return Fsync(path, O_RDONLY); }

Status SyncDirectory(const std::string& dir) { return Fsync(dir, O_RDONLY | O_DIRECTORY); }

Status SyncTree(const std::string& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    if (it->is_directory(ec)) {
      RILL_RETURN_IF_ERROR(SyncDirectory(it->path().string()));
    } else if (it->is_regular_file(ec)) {
      RILL_RETURN_IF_ERROR(SyncFile(it->path().string()));
    }
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", root, ec.message()));
  RILL_RETURN_IF_ERROR(SyncDirectory(root));
  return SyncDirectory(Parent(fs::absolute(root).string()));
}

mode_t CurrentUmask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) != 0) continue;
    try {
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8)) & 0777;
    } catch (const std::exception&) {
      break;
    }
  }
  return 022;  // kernels before 4.7 do not say; the common default
}

Status CopyModes(const std::string& from, const std::string& to) {
  std::error_code ec;
  auto apply = [&](const fs::path& source, const fs::path& copy) -> Status {
    struct stat st {};
    if (::lstat(source.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return Status::OK();  // nothing to follow
    if (::chmod(copy.c_str(), st.st_mode & 07777) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot set the mode of {}: {}", copy.string(), std::strerror(errno)));
    return Status::OK();
  };
  for (auto it = fs::recursive_directory_iterator(to, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    RILL_RETURN_IF_ERROR(apply(fs::path(from) / fs::relative(it->path(), to, ec), it->path()));
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", to, ec.message()));
  return apply(from, to);
}

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& target, mode_t mode) {
  std::string temp = target + ".tmp.XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // O_CREAT|O_EXCL: never an existing file or symlink
  if (fd < 0) return Status::IOError(fmt::format("cannot create a file beside {}: {}", target, std::strerror(errno)));
  (void)::fchmod(fd, mode & 0666 & ~CurrentUmask());  // mkostemp makes 0600
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return Status::IOError(fmt::format("cannot open {}: {}", temp, std::strerror(err)));
  }
  return AtomicFileWriter(target, std::move(temp), f);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : target_(std::move(other.target_)), temp_(std::move(other.temp_)), file_(std::exchange(other.file_, nullptr)) {}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  ::unlink(temp_.c_str());
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return Status::IOError(fmt::format("{}: already closed", target_));
  int err = 0;
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) err = errno;
  if (std::fclose(file_) != 0 && err == 0) err = errno;
  bool ok = err == 0;
  file_ = nullptr;
  if (!ok) {
    ::unlink(temp_.c_str());
    return Status::IOError(fmt::format("cannot write {}: {}", target_, std::strerror(err)));
  }
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    err = errno;
    ::unlink(temp_.c_str());
    return Status::IOError(fmt::format("cannot rename {} to {}: {}", temp_, target_, std::strerror(err)));
  }
  return SyncDirectory(Parent(target_));
}

}  // namespace rill
