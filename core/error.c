#include "error.h"

const char *pv_strerror(int err)
{
    switch (err) {
    case PV_OK:
        return "success";
    case PV_ENOMEM:
        return "out of memory";
    case PV_EINVAL:
        return "invalid input";
    case PV_EIO:
        return "input/output error";
    case PV_ETOOBIG:
        return "input too large";
    case PV_ENOTFOUND:
        return "not found";
    case PV_EDB:
        return "database error";
    case PV_ELUA:
        return "Lua error";
    case PV_ESTATE:
        return "not allowed in this state";
    case PV_EBUSY:
        return "database is busy";
    case PV_EAGAIN:
        return "incomplete input";
    case PV_EGONE:
        return "the database file was deleted or replaced";
    case PV_ELOCKED:
        return "another pvwatch is running on this database";
    case PV_EAUTH:
        return "wrong user name or password";
    case PV_ELIMIT:
        return "too many attempts; try again later";
    }
    return "unknown error";
}
