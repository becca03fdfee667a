// ESM entry: `import OpenAI from 'modelservice'` (or the named exports below).
import OpenAI from './index.js'

export default OpenAI
export const {
  Registry,
  Stream,
  OpenAIError,
  APIError,
  APIUserAbortError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
  modelLoads,
} = OpenAI
export { OpenAI }
