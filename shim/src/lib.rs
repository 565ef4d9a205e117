//! The C ABI of py4cl2-cffi (skeleton).
