//! Unix processes: liveness, parent ids, signals and child control.
