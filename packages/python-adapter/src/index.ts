export {
  InvalidRefError,
  isRef,
  type Ref,
  RefNotFoundError,
  SessionMismatchError,
} from '@trestle/ref-registry';
export {
  type BlobList,
  blobList,
  Decoder,
  type DecoderOptions,
  Encoder,
  type EncoderOptions,
  type PyCodec,
} from './codec';
export { collectRefs } from './collect-refs';
export {
  PythonAdapterError,
  PythonAdapterErrorCode,
  PythonError,
  type PythonErrorInfo,
  UnencodableError,
  WorkerCrashedError,
} from './errors';
export {
  type Interpreter,
  type InterpreterSource,
  pythonPackageDir,
  resolveInterpreter,
} from './interpreter';
export { consoleLogger, type Logger, type PythonOutput } from './logger';
export type { WorkerStats } from './pool';
export { isPyObject, type KwargsMarker, kw, type PyObject } from './proxy';
export { createPython, PythonBridge } from './python';
export type {
  BatchItem,
  BatchResult,
  CallOptions,
  DoctorReport,
  Kwargs,
  PyStream,
  Python,
  PythonOptions,
  PythonStats,
  StreamOptions,
  WorkerPythonStats,
} from './types';
export { isTuple, PyComplex, PyDate, PyDateTime, PyFrozenSet, PyTuple, tuple } from './values';
export { PROTOCOL_VERSION, type WorkerHello } from './worker';
