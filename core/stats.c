/* stats: see stats.h. The special functions follow the textbook methods
 * (series and continued fraction for the incomplete gamma, a safeguarded
 * Newton step for its inverse, the asymptotic series for digamma); each is
 * checked against published figures in tests/unit/test_stats.c. */
#include "stats.h"

#include <math.h>
#include <stddef.h>

#define PV_EPS 1e-15
#define PV_TINY 1e-300

static double log_gamma_prefix(double a, double x)
{
    return -x + a * log(x) - lgamma(a);
}

static double gamma_series(double a, double x)
{
    double ap = a, del = 1.0 / a, sum = del;
    for (int i = 0; i < 10000; i++) {
        ap += 1.0;
        del *= x / ap;
        sum += del;
        if (fabs(del) < fabs(sum) * PV_EPS)
            break;
    }
    return sum * exp(log_gamma_prefix(a, x));
}

/* Q(a, x) by the modified Lentz continued fraction. */
static double gamma_cfrac(double a, double x)
{
    double b = x + 1.0 - a, c = 1.0 / PV_TINY, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < PV_TINY)
            d = PV_TINY;
        c = b + an / c;
        if (fabs(c) < PV_TINY)
            c = PV_TINY;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < PV_EPS)
            break;
    }
    return exp(log_gamma_prefix(a, x)) * h;
}

double pv_gamma_p(double a, double x)
{
    if (!(a > 0) || !(x > 0))
        return 0.0;
    if (isinf(x))
        return 1.0;
    if (x < a + 1.0)
        return gamma_series(a, x);
    return 1.0 - gamma_cfrac(a, x);
}

/* Solved for t = ln x, so that the tiny quantiles of a small shape (the
 * 2.5 % point of a = 0.01 is near 1e-160) are found as well as the large
 * ones: bracket by doubling steps in t, then Newton (dP/dt = x f(x)) kept
 * inside the bracket, bisection when it would leave. */
double pv_gamma_p_inv(double a, double p)
{
    if (!(p > 0) || !(a > 0))
        return 0.0;
    if (p >= 1.0)
        return HUGE_VAL;
    /* Start from the small-x form P(a, x) ~ x^a / Gamma(a + 1). */
    double t = (log(p) + lgamma(a + 1.0)) / a;
    if (t > log(a + 1.0))
        t = log(a + 1.0);
    double tlo = t, thi = t, step = 1.0;
    while (pv_gamma_p(a, exp(tlo)) > p && tlo > -745)
        tlo -= step, step *= 2.0;
    step = 1.0;
    while (pv_gamma_p(a, exp(thi)) < p && thi < 709)
        thi += step, step *= 2.0;
    t = 0.5 * (tlo + thi);
    for (int i = 0; i < 400 && thi - tlo > 1e-15 * (fabs(t) + 1.0); i++) {
        double x = exp(t), f = pv_gamma_p(a, x) - p;
        if (f < 0)
            tlo = t;
        else
            thi = t;
        double deriv = exp(a * t - x - lgamma(a));
        double next = deriv > 0 ? t - f / deriv : 0.5 * (tlo + thi);
        if (!(next > tlo && next < thi))
            next = 0.5 * (tlo + thi);
        if (fabs(next - t) <= 1e-15 * (fabs(t) + 1.0)) {
            t = next;
            break;
        }
        t = next;
    }
    return exp(t);
}

double pv_gamma_quantile(double p, double shape, double rate)
{
    if (!(rate > 0))
        return 0.0;
    return pv_gamma_p_inv(shape, p) / rate;
}

double pv_chi2_quantile(double p, double df)
{
    return 2.0 * pv_gamma_p_inv(df / 2.0, p);
}

double pv_digamma(double x)
{
    double r = 0.0;
    if (!(x > 0))
        return 0.0;
    while (x < 10.0) {
        r -= 1.0 / x;
        x += 1.0;
    }
    double f = 1.0 / (x * x);
    return r + log(x) - 0.5 / x -
           f * (1.0 / 12 -
                f * (1.0 / 120 -
                     f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
}

void pv_poisson_ci(double k, double alpha, double *lo, double *hi)
{
    *lo = k > 0 ? pv_gamma_p_inv(k, alpha / 2.0) : 0.0;
    *hi = pv_gamma_p_inv(k + 1.0, 1.0 - alpha / 2.0);
}

/* k over a denominator, with the exact CI of k over the same. */
static struct pv_rate count_over(double k, double denominator)
{
    struct pv_rate r = {0, 0, 0};
    if (!(denominator > 0))
        return r;
    double lo, hi;
    pv_poisson_ci(k, 0.05, &lo, &hi);
    r.rate = k / denominator;
    r.lo = lo / denominator;
    r.hi = hi / denominator;
    return r;
}

struct pv_rate pv_incidence_100py(double events, double py)
{
    return count_over(events, py / 100.0);
}

struct pv_rate pv_sir(double observed, double expected)
{
    return count_over(observed, expected);
}

void pv_ic(double o, double e, double *ic, double *ic025, double *ic975)
{
    *ic = log2((o + 0.5) / (e + 0.5));
    *ic025 = log2(pv_gamma_quantile(0.025, o + 0.5, e + 0.5));
    *ic975 = log2(pv_gamma_quantile(0.975, o + 0.5, e + 0.5));
}

static double chi2_of(double a, double b, double c, double d, int yates)
{
    double n = a + b + c + d;
    double den = (a + b) * (c + d) * (a + c) * (b + d);
    if (!(den > 0))
        return 0.0;
    double diff = fabs(a * d - b * c);
    if (yates)
        diff = diff > n / 2.0 ? diff - n / 2.0 : 0.0;
    return n * diff * diff / den;
}

void pv_dispro_compute(double a, double b, double c, double d,
                       struct pv_dispro *o)
{
    const double z = 1.959963984540054;
    o->a = a, o->b = b, o->c = c, o->d = d;
    o->haldane = a == 0 || b == 0 || c == 0 || d == 0;
    double h = o->haldane ? 0.5 : 0.0;
    double A = a + h, B = b + h, C = c + h, D = d + h;

    o->prr = (A / (A + B)) / (C / (C + D));
    double se = sqrt(1 / A - 1 / (A + B) + 1 / C - 1 / (C + D));
    o->prr_lo = exp(log(o->prr) - z * se);
    o->prr_hi = exp(log(o->prr) + z * se);
    o->ror = (A * D) / (B * C);
    se = sqrt(1 / A + 1 / B + 1 / C + 1 / D);
    o->ror_lo = exp(log(o->ror) - z * se);
    o->ror_hi = exp(log(o->ror) + z * se);

    o->chi2 = chi2_of(a, b, c, d, 1);
    o->chi2_uncorrected = chi2_of(a, b, c, d, 0);

    double n = a + b + c + d;
    o->expected = n > 0 ? (a + b) * (a + c) / n : 0.0;
    pv_ic(a, o->expected, &o->ic, &o->ic025, &o->ic975);

    o->evans = a >= 3 && o->prr >= 2 && o->chi2 >= 4;
    o->ror_signal = a >= 3 && o->ror_lo > 1;
    o->ic_signal = o->ic025 > 0;
}

/* log of the negative binomial probability of n with size alpha and
 * probability beta / (beta + e): the marginal of a Poisson(lambda e) with
 * lambda ~ Gamma(alpha, beta). */
static double log_nbinom(double n, double alpha, double beta, double e)
{
    return lgamma(alpha + n) - lgamma(alpha) - lgamma(n + 1.0) +
           alpha * log(beta / (beta + e)) + n * log(e / (beta + e));
}

static double clamp_e(double e)
{
    return e > 1e-12 ? e : 1e-12;
}

static double log_add(double x, double y)
{
    double m = x > y ? x : y;
    if (isinf(m))
        return m;
    return m + log(exp(x - m) + exp(y - m));
}

void pv_ebgm_compute(const struct pv_ebgm_prior *t, double n, double e,
                     struct pv_ebgm *o)
{
    e = clamp_e(e);
    double l1 = log(t->p) + log_nbinom(n, t->alpha1, t->beta1, e);
    double l2 = log1p(-t->p) + log_nbinom(n, t->alpha2, t->beta2, e);
    o->qn = exp(l1 - log_add(l1, l2));
    double elog = o->qn * (pv_digamma(t->alpha1 + n) - log(t->beta1 + e)) +
                  (1 - o->qn) * (pv_digamma(t->alpha2 + n) - log(t->beta2 + e));
    o->ebgm = exp(elog);
    o->eb05 = pv_ebgm_quantile(t, o->qn, n, e, 0.05);
    o->eb95 = pv_ebgm_quantile(t, o->qn, n, e, 0.95);
}

static double mix_cdf(const struct pv_ebgm_prior *t, double qn, double n,
                      double e, double x)
{
    return qn * pv_gamma_p(t->alpha1 + n, (t->beta1 + e) * x) +
           (1 - qn) * pv_gamma_p(t->alpha2 + n, (t->beta2 + e) * x);
}

double pv_ebgm_quantile(const struct pv_ebgm_prior *t, double qn, double n,
                        double e, double p)
{
    e = clamp_e(e);
    double q1 = pv_gamma_quantile(p, t->alpha1 + n, t->beta1 + e);
    double q2 = pv_gamma_quantile(p, t->alpha2 + n, t->beta2 + e);
    double lo = q1 < q2 ? q1 : q2, hi = q1 < q2 ? q2 : q1;
    /* The mixture quantile lies between the components' quantiles:
     * geometric bisection to 1e-9 relative (the reports print 4 digits). */
    for (int i = 0; i < 200 && hi - lo > 1e-9 * hi; i++) {
        double mid = lo > 0 ? sqrt(lo * hi) : 0.5 * (lo + hi);
        if (mix_cdf(t, qn, n, e, mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double pv_ebgm_loglik(const struct pv_ebgm_prior *t, const double *n,
                      const double *e, const double *w, long count)
{
    double ll = 0.0, lp = log(t->p), lq = log1p(-t->p);
    for (long i = 0; i < count; i++) {
        double ei = clamp_e(e[i]);
        double f = log_add(lp + log_nbinom(n[i], t->alpha1, t->beta1, ei),
                           lq + log_nbinom(n[i], t->alpha2, t->beta2, ei));
        double z = log_add(lp + log_nbinom(0, t->alpha1, t->beta1, ei),
                           lq + log_nbinom(0, t->alpha2, t->beta2, ei));
        /* log(1 - P(N = 0)): the cell is in the table only when N >= 1. */
        double trunc = z > -0.69 ? log(-expm1(z)) : log1p(-exp(z));
        ll += (w ? w[i] : 1.0) * (f - trunc);
    }
    return isfinite(ll) ? ll : -HUGE_VAL;
}

/* Nelder-Mead over (log a1, log b1, log a2, log b2, logit p). */
struct fit_data {
    const double *n, *e, *w;
    long count;
};

static struct pv_ebgm_prior from_vec(const double v[5])
{
    struct pv_ebgm_prior t = {exp(v[0]), exp(v[1]), exp(v[2]), exp(v[3]),
                              1.0 / (1.0 + exp(-v[4]))};
    return t;
}

static double objective(const struct fit_data *fd, const double v[5])
{
    for (int i = 0; i < 5; i++)
        if (!(fabs(v[i]) < 30))
            return HUGE_VAL;
    struct pv_ebgm_prior t = from_vec(v);
    if (!(t.p > 1e-9 && t.p < 1 - 1e-9))
        return HUGE_VAL;
    double ll = pv_ebgm_loglik(&t, fd->n, fd->e, fd->w, fd->count);
    return isfinite(ll) ? -ll : HUGE_VAL;
}

static void nelder_mead(const struct fit_data *fd, double x[5])
{
    enum { K = 5 };
    double s[K + 1][K], f[K + 1];
    for (int r = 0; r < 2; r++) { /* one restart from the first optimum */
        for (int i = 0; i <= K; i++) {
            for (int j = 0; j < K; j++)
                s[i][j] = x[j] + (i == j + 1 ? 0.5 : 0.0);
            f[i] = objective(fd, s[i]);
        }
        for (int it = 0; it < 4000; it++) {
            int hi = 0, lo = 0, nh = 0;
            for (int i = 1; i <= K; i++) {
                if (f[i] > f[hi])
                    hi = i;
                if (f[i] < f[lo])
                    lo = i;
            }
            nh = hi == 0 ? 1 : 0;
            for (int i = 0; i <= K; i++)
                if (i != hi && f[i] > f[nh])
                    nh = i;
            if (fabs(f[hi] - f[lo]) <= 1e-10 * (fabs(f[lo]) + 1e-10))
                break;
            double c[K] = {0}, xr[K], xe[K];
            for (int i = 0; i <= K; i++)
                if (i != hi)
                    for (int j = 0; j < K; j++)
                        c[j] += s[i][j] / K;
            for (int j = 0; j < K; j++)
                xr[j] = c[j] + (c[j] - s[hi][j]);
            double fr = objective(fd, xr);
            if (fr < f[lo]) {
                for (int j = 0; j < K; j++)
                    xe[j] = c[j] + 2.0 * (c[j] - s[hi][j]);
                double fe = objective(fd, xe);
                const double *keep = fe < fr ? xe : xr;
                for (int j = 0; j < K; j++)
                    s[hi][j] = keep[j];
                f[hi] = fe < fr ? fe : fr;
            } else if (fr < f[nh]) {
                for (int j = 0; j < K; j++)
                    s[hi][j] = xr[j];
                f[hi] = fr;
            } else {
                for (int j = 0; j < K; j++)
                    xe[j] = c[j] + 0.5 * (s[hi][j] - c[j]);
                double fc = objective(fd, xe);
                if (fc < f[hi]) {
                    for (int j = 0; j < K; j++)
                        s[hi][j] = xe[j];
                    f[hi] = fc;
                } else {
                    for (int i = 0; i <= K; i++) {
                        if (i == lo)
                            continue;
                        for (int j = 0; j < K; j++)
                            s[i][j] = s[lo][j] + 0.5 * (s[i][j] - s[lo][j]);
                        f[i] = objective(fd, s[i]);
                    }
                }
            }
        }
        int best = 0;
        for (int i = 1; i <= K; i++)
            if (f[i] < f[best])
                best = i;
        for (int j = 0; j < K; j++)
            x[j] = s[best][j];
    }
}

int pv_ebgm_fit(const double *n, const double *e, const double *w, long count,
                const struct pv_ebgm_prior *start, struct pv_ebgm_prior *out)
{
    static const struct pv_ebgm_prior openebgm = {0.2, 0.1, 2, 4, 1.0 / 3};
    const struct pv_ebgm_prior *s = start ? start : &openebgm;
    struct fit_data fd = {n, e, w, count};
    double x[5] = {log(s->alpha1), log(s->beta1), log(s->alpha2), log(s->beta2),
                   log(s->p / (1 - s->p))};
    if (count <= 0 || !isfinite(objective(&fd, x)))
        return -1;
    nelder_mead(&fd, x);
    *out = from_vec(x);
    return isfinite(objective(&fd, x)) ? 0 : -1;
}
