/** How the bench's reports print numbers. */

export const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
export const ms = (value: number) => Number.isNaN(value) ? 'n/a' : value < 10 ? value.toFixed(2) : value.toFixed(1)
export const ratio = (value: number) => Number.isNaN(value) ? 'n/a' : `${value.toFixed(2)}×`
