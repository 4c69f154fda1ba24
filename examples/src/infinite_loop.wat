;; infinite_loop: a WASI command that never ends and never calls the host.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
