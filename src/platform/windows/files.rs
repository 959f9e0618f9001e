//! Windows files: permissions, owners, devices, inodes and atomic replace.
