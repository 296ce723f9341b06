/* wigeon: the one mapping between wigeon's errno-style status codes and gRPC status codes (see
 * rpc.h for the table and engine/engine.h for where the codes come from). Every layer that
 * answers or reads a gRPC status goes through these two functions, so a code means the same thing
 * on both sides of the wire. */
#include "rpc/rpc.h"

#include <errno.h>

grpc_status_code wg_rpc_status_from_errno(int code) {
  switch (code) {
  case 0:
    return GRPC_STATUS_OK;
  case EINVAL:
  case EPROTO:
    return GRPC_STATUS_INVALID_ARGUMENT;
  case ENOENT:
    return GRPC_STATUS_NOT_FOUND;
  case EEXIST:
    return GRPC_STATUS_ALREADY_EXISTS;
  case EPERM:
    return GRPC_STATUS_FAILED_PRECONDITION;
  case EACCES: /* reserved: a caller without the role an RPC or action needs */
    return GRPC_STATUS_PERMISSION_DENIED;
  case WG_EUNAUTHENTICATED: /* reserved: no credentials, or credentials refused */
    return GRPC_STATUS_UNAUTHENTICATED;
  case EAGAIN:
    return GRPC_STATUS_ABORTED;
  case ENOMEM:
  case EBUSY:
  case ENOSPC:
  case EMSGSIZE: /* a message over the size limit */
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case ECANCELED:
    return GRPC_STATUS_CANCELLED;
  case ETIMEDOUT:
    return GRPC_STATUS_DEADLINE_EXCEEDED;
  case ERANGE: /* a live tail's sequence the server no longer (or never) holds */
    return GRPC_STATUS_OUT_OF_RANGE;
  case ENOTSUP:
    return GRPC_STATUS_UNIMPLEMENTED;
  case ECONNREFUSED:
  case EPIPE:
  case ENOTRECOVERABLE: /* the database needs a restart: another try after it works */
    return GRPC_STATUS_UNAVAILABLE;
  default:
    return GRPC_STATUS_INTERNAL;
  }
}

int wg_rpc_errno_from_call_error(grpc_call_error e, int ended) {
  switch (e) {
  case GRPC_CALL_OK:
    return 0;
  case GRPC_CALL_ERROR_TOO_MANY_OPERATIONS:
    return EBUSY; /* two sends (or receives) outstanding at once */
  case GRPC_CALL_ERROR_ALREADY_FINISHED:
    return ended;
  default:
    return EINVAL; /* a batch that gRPC refuses to start: a misuse of the call */
  }
}

/* The way back picks one code per gRPC status. RESOURCE_EXHAUSTED reads as EBUSY because a
 * client mostly sees it when the server is busy or a message is over the limit, not when it is out
 * of memory itself; codes wigeon never sends map to their nearest meaning; INTERNAL and the rest
 * are EIO, the engine's "anything else". */
int wg_rpc_errno_from_status(grpc_status_code code) {
  switch (code) {
  case GRPC_STATUS_OK:
    return 0;
  case GRPC_STATUS_INVALID_ARGUMENT:
    return EINVAL;
  case GRPC_STATUS_OUT_OF_RANGE:
    return ERANGE;
  case GRPC_STATUS_NOT_FOUND:
    return ENOENT;
  case GRPC_STATUS_ALREADY_EXISTS:
    return EEXIST;
  case GRPC_STATUS_FAILED_PRECONDITION:
    return EPERM;
  case GRPC_STATUS_PERMISSION_DENIED:
    return EACCES;
  case GRPC_STATUS_UNAUTHENTICATED:
    return WG_EUNAUTHENTICATED;
  case GRPC_STATUS_ABORTED:
    return EAGAIN;
  case GRPC_STATUS_RESOURCE_EXHAUSTED:
    return EBUSY;
  case GRPC_STATUS_CANCELLED:
    return ECANCELED;
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    return ETIMEDOUT;
  case GRPC_STATUS_UNIMPLEMENTED:
    return ENOTSUP;
  case GRPC_STATUS_UNAVAILABLE:
    return ECONNREFUSED;
  default:
    return EIO;
  }
}
